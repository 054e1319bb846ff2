"""``/dashboard``: a page for operators, served from the package so that it needs no network. The page itself asks
for no key; everything it shows comes from the API, with the key the operator signs in with.

Its files are read once, at import. Each is answered with an ``ETag`` and ``Cache-Control: no-cache``, so a browser
keeps it and asks again cheaply (304) after an upgrade; the page's own Content-Security-Policy lets it load nothing but
its own files and talk to nothing but this server.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from tidings.api.routing import Handler, Param, Reply, Router

router = Router()
TAG = "dashboard"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IF_NONE_MATCH = Param("The `ETag` of the copy the browser has: 304 when it is still this one.")


@dataclass(frozen=True)
class File:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def read(cls, name: str, content_type: str) -> File:
        body = resources.files(__package__).joinpath(name).read_bytes()
        return cls(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')


def _serve(name: str, file: File) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        seen = request.headers.get("If-None-Match", "")
        if file.etag in seen or seen.strip() == "*":
            return web.Response(status=304, headers={**HEADERS, "ETag": file.etag})
        headers = {**HEADERS, "ETag": file.etag, "Content-Type": file.content_type}
        return web.Response(body=file.body, headers=headers)

    handler.__name__ = name  # the document's operationId
    return handler


for path, name, file_name, media_type, summary in (
    ("/dashboard", "page", "index.html", "text/html", "The operators' dashboard (sign in there with an API key)"),
    ("/dashboard/app.js", "script", "app.js", "text/javascript", "The dashboard's script"),
    ("/dashboard/style.css", "stylesheet", "style.css", "text/css", "The dashboard's style sheet"),
    ("/dashboard/icon.svg", "icon", "icon.svg", "image/svg+xml", "The dashboard's icon"),
):
    router.route(
        "GET",
        path,
        summary=summary,
        scope=None,
        tag=TAG,
        answers={
            200: Reply(f"The file, `{media_type}`.", media_type),
            304: Reply("The browser's copy (`If-None-Match`) is still this one.", None),
        },
        headers={"If-None-Match": IF_NONE_MATCH},
    )(_serve(name, File.read(file_name, f"{media_type}; charset=utf-8")))
