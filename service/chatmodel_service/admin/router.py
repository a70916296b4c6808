"""``GET /admin`` (the page) and ``GET /admin/static/{asset}`` (its scripts and styles).

The page is plain HTML, CSS and JavaScript modules shipped inside the package and read
with importlib.resources; it talks to the REST API like any other client and has no
build step. Assets are served by name from one folder: no sub-paths, no traversal.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Response

from chatmodel_service.errors import NotFound

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
ASSET_NAME = re.compile(r"[a-z][a-z0-9_\-]*(\.js|\.css)")

# The page loads nothing from elsewhere (no CDN, no fonts) and runs no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # A new release of the package may change the files: always revalidate.
    "Cache-Control": "no-cache",
}


def static_dir() -> Traversable:
    return files("chatmodel_service.admin") / "static"


@router.get("")
async def admin_page() -> Response:
    html = (static_dir() / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/static/{asset}")
async def admin_asset(asset: str) -> Response:
    name = ASSET_NAME.fullmatch(asset)
    if name is None or not (static_dir() / asset).is_file():
        raise NotFound(f"The admin page has no asset '{asset}'.", field="asset")
    body = (static_dir() / asset).read_bytes()
    return Response(body, media_type=MEDIA_TYPES[name.group(1)], headers=SECURITY_HEADERS)
