"""The event sink: `record()` appends to a bounded in-process buffer and returns at once; one
owned loop per process copies the buffer to the `events` table in batches.

Views, cart additions and searches are worth counting but not worth slowing a request for, so
when PostgreSQL falls behind events are dropped (and counted) rather than queued without end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Final

import asyncpg
from aiohttp import web

from analytics.metrics import EVENTS_DROPPED, EVENTS_WRITTEN, FLUSH_FAILURES
from mall.auth import Principal
from mall.background import StoppableLoop, stop_task
from mall.errors import ApiError
from mall.resources import PG, VERIFIER

log = logging.getLogger(__name__)

KINDS: Final = frozenset({"view", "cart", "search"})
COLUMNS: Final = ("at", "kind", "user_id", "product_id", "sku_id", "query", "results")
MAX_QUERY: Final = 200
MAX_USER_ID: Final = 64
BUFFER_CAPACITY: Final = 100_000
BATCH_SIZE: Final = 1_000
FLUSH_INTERVAL_S: Final = 1.0
# A batch that failed is kept for this many further attempts, then dropped and counted.
MAX_ATTEMPTS: Final = 5
SHUTDOWN_GRACE_S: Final = 10.0

Event = tuple[datetime, str, str | None, int | None, int | None, str | None, int | None]


class EventSink(StoppableLoop):
    """Buffers events in memory and copies them to PostgreSQL every `interval_s`, or as soon
    as `batch_size` are waiting."""

    def __init__(self, pool: asyncpg.Pool, capacity: int = BUFFER_CAPACITY,
                 batch_size: int = BATCH_SIZE, interval_s: float = FLUSH_INTERVAL_S) -> None:
        super().__init__()
        self.pool = pool
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.dropped = 0
        self._buffer: list[Event] = []
        self._retry: list[Event] = []
        self._attempts = 0
        self._batch_ready = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self._buffer) + len(self._retry)

    def add(self, event: Event) -> None:
        if self.closed:
            EVENTS_DROPPED.labels("shut_down").inc()
            return
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            EVENTS_DROPPED.labels("buffer_full").inc()
            return
        # No counter per event (a shared-memory write in multiprocess mode): written and
        # dropped events are counted, which is what ops act on.
        self._buffer.append(event)
        if len(self._buffer) == self.batch_size:
            self._batch_ready.set()

    async def step(self) -> bool:
        """Copy one batch; True while a full batch is still waiting."""
        await self.flush_batch()
        return len(self._buffer) >= self.batch_size

    async def flush_batch(self) -> int:
        if not self._retry:
            self._batch_ready.clear()
            self._retry = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            self._attempts = 0
        if not self._retry:
            return 0
        batch = self._retry
        try:
            async with self.pool.acquire() as conn:
                await conn.copy_records_to_table("events", records=batch, columns=COLUMNS)
        except Exception:
            FLUSH_FAILURES.inc()
            self._attempts += 1
            if self._attempts >= MAX_ATTEMPTS:
                self.dropped += len(batch)
                EVENTS_DROPPED.labels("write_failed").inc(len(batch))
                self._retry = []
            raise
        self._retry = []
        EVENTS_WRITTEN.inc(len(batch))
        return len(batch)

    async def drain(self) -> None:
        """Copy everything still buffered (at shutdown), then refuse further events."""
        try:
            while len(self):
                try:
                    await self.flush_batch()
                except Exception:  # flush_batch gives a batch up after MAX_ATTEMPTS
                    log.warning("copying events failed at shutdown; retrying", exc_info=True)
                    await asyncio.sleep(0.2)
        finally:
            self.closed = True

    async def close(self, task: asyncio.Task[None]) -> None:
        """Stop the loop running in `task`, then copy what is left."""
        self.stop()
        await stop_task(task, SHUTDOWN_GRACE_S)
        try:
            await asyncio.wait_for(self.drain(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("%d analytics events not written at shutdown", len(self))

    async def pause(self, seconds: float) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        ready = asyncio.ensure_future(self._batch_ready.wait())
        try:
            await asyncio.wait({stop, ready}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, ready):
                waiter.cancel()


EVENT_SINK = web.AppKey("event_sink", EventSink)


def _event(kind: str, user_id: str | None, product_id: int | None, sku_id: int | None,
           query: str | None, results: int | None) -> Event | None:
    if kind not in KINDS or (user_id is not None and not 0 < len(user_id) <= MAX_USER_ID):
        return None
    if results is not None and results < 0:
        return None
    return (datetime.now(UTC), kind, user_id, product_id, sku_id,
            query[:MAX_QUERY] if query is not None else None, results)


def record(app: web.Application, kind: str, user_id: str | None = None,
           product_id: int | None = None, sku_id: int | None = None, query: str | None = None,
           results: int | None = None) -> None:
    """Note a behaviour event: no I/O, never raises. `kind` is view, cart or search."""
    try:
        sink = app.get(EVENT_SINK)
        if sink is None:
            return
        event = _event(kind, user_id, product_id, sku_id, query, results)
        if event is None:
            EVENTS_DROPPED.labels("invalid").inc()
            return
        sink.add(event)
    except Exception:  # analytics must never break the request that records it
        log.debug("event not recorded", exc_info=True)


def caller_id(request: web.Request) -> str | None:
    """The user id of a valid bearer token, else None (a bad token is not rejected here)."""
    if "Authorization" not in request.headers:
        return None
    try:
        principal: Principal = request.app[VERIFIER].from_request(request)
    except ApiError:
        return None
    return principal.user_id


async def sink_ctx(app: web.Application) -> AsyncIterator[None]:
    sink = EventSink(app[PG])
    app[EVENT_SINK] = sink
    task = asyncio.create_task(sink.run(), name="analytics-event-sink")
    yield
    await sink.close(task)
