"""How ``/dashboard`` and its files are served: from the package, with their types, a strict Content-Security-Policy,
revalidation by ETag, no key needed, and described in the OpenAPI document."""

from __future__ import annotations

import re
from importlib import resources

from tidings.api import dashboard

FILES = {
    "/dashboard": "text/html",
    "/dashboard/app.js": "text/javascript",
    "/dashboard/style.css": "text/css",
    "/dashboard/icon.svg": "image/svg+xml",
}


async def test_the_page_and_its_files_are_served_without_a_key(serve):
    api = await serve()
    for path, media_type in FILES.items():
        answer = await api.get(path, key=None)
        assert answer.status == 200, (path, answer.body)
        assert answer.headers["Content-Type"] == f"{media_type}; charset=utf-8"
        assert answer.headers["Content-Security-Policy"] == dashboard.CSP
        assert answer.headers["Cache-Control"] == "no-cache" and answer.headers["X-Content-Type-Options"] == "nosniff"
        again = await api.get(path, key=None, headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status == 304 and again.body is None
    page = (await api.get("/dashboard", key=None)).body
    assert 'src="dashboard/app.js"' in page and "<script>" not in page, "no inline script: the CSP forbids it"


def test_the_policy_lets_the_page_load_and_call_nothing_but_this_server():
    policy = dict(part.strip().split(" ", 1) for part in dashboard.CSP.split(";"))
    assert policy["default-src"] == "'none'"
    assert all(policy[name] == "'self'" for name in ("script-src", "style-src", "img-src", "connect-src"))
    assert policy["frame-ancestors"] == "'none'"


def test_the_files_are_small_and_fetch_nothing_from_elsewhere():
    folder = resources.files(dashboard)
    files = [item for item in folder.iterdir() if item.name.endswith((".html", ".js", ".css", ".svg"))]
    assert sum(len(item.read_bytes()) for item in files) < 60_000
    for item in files:
        text = item.read_text()
        assert not re.search(r"(https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", text), item.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, item.name


async def test_the_document_describes_the_routes(serve):
    api = await serve()
    paths = (await api.get("/openapi.json", key=None)).body["paths"]
    for path, media_type in FILES.items():
        answers = paths[path]["get"]["responses"]
        assert list(answers["200"]["content"]) == [media_type] and "content" not in answers["304"]
        assert "security" not in paths[path]["get"]
