"""The web page: ``GET /`` serves ``static/index.html``, ``/static/`` its assets, everything gzipped.

Asset URLs in index.html carry ``?v={{asset_version}}``, replaced here by a hash of the assets, so a
versioned asset can be cached for a year while index.html itself is revalidated on every load.
"""

from __future__ import annotations

import hashlib
import os
from email.utils import formatdate
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = STATIC_DIR / "index.html"
ASSETS = ("app.js", "style.css", "favicon.svg")
VERSION_MARK = "{{asset_version}}"

VERSIONED_CACHE = "public, max-age=31536000, immutable"  # /static/x?v=<hash>: the URL changes with the file
ASSET_CACHE = "public, max-age=3600"  # an unversioned asset URL
INDEX_CACHE = "no-cache"  # always revalidate (ETag / Last-Modified), so a new release is picked up at once

# The page loads nothing from elsewhere: scripts, styles, images and API calls all stay on this origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class CachedStaticFiles(StaticFiles):
    """StaticFiles (ETag, Last-Modified, 304s) plus a Cache-Control header."""

    def file_response(self, full_path, stat_result: os.stat_result, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = b"v=" in (scope.get("query_string") or b"")
        response.headers["cache-control"] = VERSIONED_CACHE if versioned else ASSET_CACHE
        response.headers["x-content-type-options"] = "nosniff"
        return response


def asset_version() -> str:
    h = hashlib.sha256()
    for name in ASSETS:
        p = STATIC_DIR / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


def render_index() -> tuple[bytes, float]:
    """index.html with its asset URLs versioned, and the newest mtime among the files it depends on."""
    html = INDEX.read_text(encoding="utf-8").replace(VERSION_MARK, asset_version())
    mtime = max((STATIC_DIR / n).stat().st_mtime for n in ("index.html", *ASSETS) if (STATIC_DIR / n).is_file())
    return html.encode("utf-8"), mtime


def mount_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/static/``; gzip every response of 500 bytes or more."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request) -> Response:
        body, mtime = render_index()
        etag = '"%s"' % hashlib.md5(body, usedforsecurity=False).hexdigest()
        headers = {
            "cache-control": INDEX_CACHE,
            "etag": etag,
            "last-modified": formatdate(mtime, usegmt=True),
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        }
        inm = request.headers.get("if-none-match")
        if inm and (inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]):
            return Response(status_code=304, headers={k: headers[k] for k in ("cache-control", "etag")})
        if request.method == "HEAD":
            return Response(status_code=200, media_type="text/html; charset=utf-8",
                            headers={**headers, "content-length": str(len(body))})
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=6)
