"""What a settled system must show before Redis may be rebuilt over it (mall/reconcile.py).

An accepted order lives first in its outbox stream (read exactly), then on the orders queue,
in a writer's hands (delivered, not acknowledged: a passive queue declare does not count it,
and without the management plugin the broker reports it to nobody), back on the queue for a
retry, or on the dead-letter queue, until its row is in PostgreSQL. Redis keeps the queued
view of every order it accepted for `order_view_ttl_s`, written by the same script as the
outbox entry: a view whose order is neither in an outbox nor in PostgreSQL is an order past the
outbox and not persisted, wherever it is. Counting those needs no help from the broker or the
writers, so it cannot be fooled by a writer that holds messages while it waits on a lock.

An outbox's mark (last generated entry id, length) moves with every order accepted into it
(the id only grows, entries are never added with an explicit id) and every order relayed out
of it (the length drops, nothing trims): a repair that finds the mark it saw in a settled check
knows no order arrived or left since.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from mall.keys import Keys, sale_of_order_id

Mark = tuple[str, int]
EMPTY_MARK: Mark = ("0-0", 0)  # a missing stream, or one created and never written to
SCAN_COUNT = 1000
PG_PAGE = 5000
PERSISTED = "SELECT order_id FROM orders WHERE order_id = ANY($1::text[])"


class RepairRaced(RuntimeError):
    """An outbox moved between the settled check and the repair's WATCH: an order was accepted
    or relayed meanwhile, so what the repair would write is not known to be complete."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.done: list[str] = []


def _mark(reply: Any) -> Mark:
    if isinstance(reply, ResponseError):  # no such key
        return EMPTY_MARK
    last = reply["last-generated-id"]
    return (last.decode() if isinstance(last, bytes) else str(last), int(reply["length"]))


async def outbox_marks(redis: Redis, streams: list[str]) -> dict[str, Mark]:
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_stream(stream)
        replies = await pipe.execute(raise_on_error=False)
    return {stream: _mark(reply) for stream, reply in zip(streams, replies, strict=True)}


async def watched_mark(pipe: Any, stream: str) -> Mark:
    """The mark of a stream read by a pipeline in WATCH (immediate) mode."""
    try:
        return _mark(await pipe.xinfo_stream(stream))
    except ResponseError as exc:
        return _mark(exc)


async def unpersisted_orders(redis: Redis, pool: asyncpg.Pool, keys: Keys,
                             in_outbox: set[str], sale_id: int | None = None) -> list[str]:
    """Ids of the orders Redis accepted (their queued view still lives) that are in no outbox
    and not in PostgreSQL: on the orders queue, held by a writer, retried or dead-lettered.
    With `sale_id`, only that flash sale's orders (nothing else changes its state).

    `in_outbox` holds the orders found in the outboxes by a read made before this one: an order
    accepted after that read shows up here (erring on the side of not settled), and one relayed
    after it moves its outbox's mark."""
    candidates: list[str] = []
    async for raw in redis.scan_iter(match=keys.order_view_pattern, count=SCAN_COUNT):
        order_id = keys.order_of_view(raw.decode())
        if order_id is None or order_id in in_outbox:
            continue
        if sale_id is None or sale_of_order_id(order_id) == sale_id:
            candidates.append(order_id)
    missing: list[str] = []
    for start in range(0, len(candidates), PG_PAGE):
        chunk = candidates[start:start + PG_PAGE]
        found = {r["order_id"] for r in await pool.fetch(PERSISTED, chunk)}
        missing += [o for o in chunk if o not in found]
    return sorted(missing)
