"""Why a code did not arrive: a verification's failed sends, each with its provider and error, and how many of its
sends a provider accepted."""

from __future__ import annotations

from tests.dispatch.conftest import yunpian_config, yunpian_emulator  # noqa: F401 - a fixture these tests use
from tests.helpers import eventually


async def test_the_failed_sends_of_a_code_say_which_provider_refused_and_why(serve, yunpian_emulator):  # noqa: F811
    sms = await yunpian_emulator(fail_first=2)
    api = await serve({**yunpian_config(sms.url), "dispatch": {"retry_base_delay": 0.05, "retry_max_delay": 0.1}})
    started = (await api.post("/v1/verifications", {"to": "+8613800138000"})).body
    path = f"/v1/verifications/{started['id']}"

    async def delivered() -> bool:
        return (await api.get(path)).body["delivered"] == 1

    await eventually(delivered)
    answer = await api.get(f"{path}/failures")
    assert answer.status == 200 and answer.body["id"] == started["id"]
    failures = answer.body["failures"]
    assert [(f["provider"], f["outcome"]) for f in failures] == [("yunpian", "transient")] * 2
    assert all(f["error"] and f["at"].endswith("Z") and f["job"].startswith("snd_") for f in failures)


async def test_a_code_sent_at_once_has_no_failures_and_an_unknown_one_is_404(serve):
    api = await serve()
    started = (await api.post("/v1/verifications", {"to": "+447700900123"})).body
    path = f"/v1/verifications/{started['id']}"

    async def delivered() -> bool:
        return (await api.get(path)).body["delivered"] == 1

    await eventually(delivered)
    assert (await api.get(f"{path}/failures")).body == {"id": started["id"], "failures": []}
    missing = await api.get("/v1/verifications/ver_00000000000000000000000000/failures")
    assert missing.status == 404 and missing.body["error"]["code"] == "verification_not_found"
