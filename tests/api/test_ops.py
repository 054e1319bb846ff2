"""Operations: health, readiness, metrics, the OpenAPI document and the page that renders it."""

from __future__ import annotations

from tests.helpers import TEST_CONFIG, TEST_NUMBER


async def test_healthz_readyz_openapi_docs(serve):
    api = await serve()
    assert (await api.get("/healthz", key=None)).body["status"] == "ok"
    assert (await api.get("/readyz", key=None)).status == 200
    document = (await api.get("/openapi.json", key=None)).body
    assert document["openapi"].startswith("3.1")
    for path in (
        "/v1/verifications",
        "/v1/verifications/check",
        "/v1/verifications/{id}",
        "/v1/verifications/{id}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/subscribers/{subscriber_id}",  # the paths as API.md writes them
        "/v1/subscribers/{id}/stream",
        "/v1/subscribers/{id}/tokens",
        "/v1/messages",
    ):
        assert path in document["paths"], path
    assert "StartVerification" in document["components"]["schemas"]
    put = document["paths"]["/v1/subscribers/{subscriber_id}"]["put"]
    assert "Idempotency-Key" in [parameter["name"] for parameter in put["parameters"]]
    assert {"409", "422", "503"} <= set(put["responses"])
    assert put["requestBody"]["required"] is False, "no body reads as {}, a valid subscriber"
    assert document["paths"]["/v1/verifications"]["post"]["requestBody"]["required"] is True
    cancel = document["paths"]["/v1/verifications/{id}/cancel"]["post"]
    assert cancel["parameters"][0]["schema"]["pattern"] == "^ver_[0-9a-f]{32}$"
    assert {"400", "404", "408"} <= set(cancel["responses"])
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert all("400" in operation["responses"] for operation in operations), "unknown query parameters"
    page = await api.get("/docs", key=None)
    assert page.status == 200 and "/docs/static/swagger-ui-bundle.js" in page.body
    script = await api.get("/docs/static/swagger-ui-bundle.js", key=None)
    assert script.status == 200
    missing = await api.get("/docs/static/nothing.js", key=None)
    assert missing.status == 404 and missing.error == "not_found"


async def test_metrics(serve):
    api = await serve(TEST_CONFIG)
    await api.post("/v1/verifications", {"to": TEST_NUMBER})
    metrics = await api.get("/metrics", key=None)
    assert metrics.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = metrics.body
    assert 'tidings_http_requests_total{method="POST",route="/v1/verifications",status="201"} 1.0' in text
    assert "tidings_send_duration_seconds" in text
    assert "tidings_queue_depth" in text
