"""Small helpers shared by the catalog handlers: callers, path ids, idempotent creates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from catalog_api.keys import CatalogKeys
from mall.auth import Principal, require_staff
from mall.errors import invalid, not_found
from mall.idempotency import idempotency_key, replay_or_run
from mall.resources import KEYS, REDIS, SETTINGS, VERIFIER

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


def path_id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise not_found(what)
    return int(raw)


async def idempotent_create(
    request: web.Request, route: str, user_id: str, body: bytes,
    run: Callable[[], Awaitable[web.Response]],
) -> web.Response:
    """Run a create once per (route, user, Idempotency-Key); a retry replays the answer."""
    app = request.app
    key = idempotency_key(request)
    record = app[KEYS].idempotency_record(route, user_id, key) if key else None
    return await replay_or_run(app[REDIS], record, body, app[SETTINGS].order_view_ttl_s, run)


def query_int(request: web.Request, name: str, default: int | None, high: int,
              low: int = 1) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)
