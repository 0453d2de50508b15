"""Small helpers shared by the catalog handlers: callers, path ids, idempotent creates."""

from __future__ import annotations

from aiohttp import web

from catalog_api.keys import CatalogKeys
from mall.auth import Principal, require_staff
from mall.errors import invalid
from mall.resources import VERIFIER

CATALOG_KEYS = web.AppKey("catalog_keys", CatalogKeys)
MAX_ID = 2**62


def staff(request: web.Request) -> Principal:
    """The caller, who must be staff: 401 without a valid token, 403 for customers."""
    return require_staff(request.app[VERIFIER].from_request(request))


def caller_is_staff(request: web.Request) -> bool:
    """Public reads work without a token; a token that is sent must be valid."""
    if "Authorization" not in request.headers:
        return False
    return request.app[VERIFIER].from_request(request).is_staff


def query_int(request: web.Request, name: str, default: int | None, high: int,
              low: int = 1) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)
