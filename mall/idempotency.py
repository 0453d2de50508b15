"""Idempotency-Key for the POSTs that create something outside the hot path.

The first answer of a (route, user, key) is kept in Redis for a day and replayed; the same key
with another body answers 422 `idempotency_key_reused`; a retry that arrives while the first
request is still running answers 409 `idempotency_in_progress`. (Flash-sale admission keeps its
record inside lua/admit.lua instead, atomically with the stock.)

While the first request runs, its record is a lease of PENDING_LEASE_S that the request renews:
a process that dies mid-request blocks the key for at most that long, not for a day. A request
refused with an ApiError changed nothing (the mall's rule for refusals), so its record is
deleted and a retry runs again. Any other failure (a dropped connection at commit, a
cancellation) leaves an outcome nobody knows: the record then answers 409
`idempotency_outcome_unknown` for the day instead of running the work a second time; the client
reads what exists and uses a new key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mall.crypto import DataCipher, data_cipher
from mall.errors import ApiError
from mall.resources import KEYS, REDIS, SETTINGS

_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_PENDING = b"pending"
PENDING_LEASE_S = 30.0


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, checked; None when absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY_RE.match(key):
        raise ApiError(
            422,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 characters of letters, digits and '_.:-'",
        )
    return key


REPLAY_PURPOSE = "idempotency.replay"


async def replay_or_run(
    redis: Redis,
    cipher: DataCipher,
    record_key: str | None,
    body: bytes,
    ttl_s: int,
    run: Callable[[], Awaitable[web.Response]],
    lease_s: float = PENDING_LEASE_S,
) -> web.Response:
    """The answer kept for a replay may hold personal data (an address, a phone number): it
    is sealed with the data key, bound to its record."""
    if record_key is None:
        return await run()
    fingerprint = hashlib.sha256(body).hexdigest()
    lease_ms = max(int(lease_s * 1000), 1)
    if not await redis.set(record_key, _PENDING, nx=True, px=lease_ms):
        return await _replay(redis, cipher, record_key, fingerprint)
    renew = asyncio.create_task(_renew(redis, record_key, lease_ms))
    try:
        response = await run()
    except ApiError:
        await _stop(renew)
        await redis.delete(record_key)
        raise
    except BaseException:
        await _stop(renew)
        await redis.set(record_key, orjson.dumps({"fp": fingerprint, "unknown": True}),
                        ex=ttl_s)
        raise
    await _stop(renew)
    assert isinstance(response.body, bytes)
    record = {"fp": fingerprint, "status": response.status,
              "body": cipher.seal_json(response.body.decode(), REPLAY_PURPOSE, record_key)}
    await redis.set(record_key, orjson.dumps(record), ex=ttl_s)
    return response


async def _stop(renew: asyncio.Task[None]) -> None:
    renew.cancel()
    with contextlib.suppress(asyncio.CancelledError, RedisError):
        await renew


async def _renew(redis: Redis, record_key: str, lease_ms: int) -> None:
    """Keep the pending lease alive while this process runs the request."""
    while True:
        await asyncio.sleep(lease_ms / 3000)
        await redis.pexpire(record_key, lease_ms)


async def _replay(redis: Redis, cipher: DataCipher, record_key: str, fingerprint: str
                  ) -> web.Response:
    stored = await redis.get(record_key)
    if stored is None or stored == _PENDING:
        raise ApiError(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is in progress"
        )
    record = orjson.loads(stored)
    if record["fp"] != fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )
    if record.get("unknown"):
        raise ApiError(
            409, "idempotency_outcome_unknown",
            "the first request with this Idempotency-Key failed after it may have taken "
            "effect; check the result and send a new key",
        )
    body = cipher.open_json(record["body"], REPLAY_PURPOSE, record_key)
    return web.Response(status=record["status"], body=body.encode(),
                        content_type="application/json")


async def idempotent(
    request: web.Request,
    route: str,
    owner: str,
    body: bytes,
    run: Callable[[], Awaitable[web.Response]],
    ttl_s: int | None = None,
) -> web.Response:
    """Run a create once per (route, owner, Idempotency-Key); a retry replays its answer."""
    app = request.app
    key = idempotency_key(request)
    record = app[KEYS].idempotency_record(route, owner, key) if key else None
    ttl = app[SETTINGS].order_view_ttl_s if ttl_s is None else ttl_s
    return await replay_or_run(app[REDIS], data_cipher(app[SETTINGS]), record, body, ttl, run)
