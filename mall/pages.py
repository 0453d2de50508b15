"""The storefront and the back office: static pages served by the same app as the API.

`web/store/` is the storefront at `/`, `web/admin/` the back office at `/backoffice/`, and
`web/common/` what both share; every file is under `/assets/`. The pages hold no data: their
scripts call the JSON API with the signed-in user's bearer token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from mall.openapi import api_doc

WEB_ROOT: Final = Path(__file__).resolve().parent.parent / "web"
ASSETS: Final = "/assets"

# Scripts and styles come from this origin only, so an injected <script> never runs.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
        " object-src 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS: Final = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}


def _page(relative: str) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / relative, headers=_PAGE_HEADERS)


@api_doc(summary="Storefront (single page; its script calls the API)", tag="pages",
         responses={200: "text/html"})
async def get_storefront(request: web.Request) -> web.FileResponse:
    return _page("store/index.html")


@api_doc(summary="Back office for staff (single page; its script calls the API)", tag="pages",
         responses={200: "text/html"})
async def get_backoffice(request: web.Request) -> web.FileResponse:
    return _page("admin/index.html")


async def _asset_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(ASSETS + "/"):
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-cache"


def setup(app: web.Application) -> None:
    app.router.add_get("/", get_storefront)
    app.router.add_get("/backoffice/", get_backoffice)
    app.router.add_get("/backoffice", get_backoffice)  # the page uses absolute asset paths
    app.router.add_static(ASSETS, WEB_ROOT, follow_symlinks=False)
    app.on_response_prepare.append(_asset_headers)
