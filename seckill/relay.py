"""The outbox relay: moves accepted orders from the sales' Redis streams to RabbitMQ.

Each serving process runs one relay consumer in the stream's consumer group. Orders read from a
stream are packed into one persistent message, published with a publisher confirm, and only
then acknowledged and deleted from the stream. If the process dies in between, the entries stay
pending in the group and another relay takes them over with XAUTOCLAIM once they have been idle
for `relay_claim_idle_ms`; the writer's ON CONFLICT makes the possible second copy harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from mall.keys import RELAY_GROUP, Keys
from mall.settings import Settings
from mall.topology import Topology
from seckill import metrics

log = logging.getLogger(__name__)

Entry = tuple[bytes, bytes]  # (stream entry id, order JSON)
REGISTRY_REFRESH_S = 1.0
MAX_BACKOFF_S = 5.0


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def pack(entries: Sequence[Entry]) -> bytes:
    """Orders are already JSON objects: join them into an array without parsing them."""
    return b"[" + b",".join(order for _, order in entries) + b"]"


class OutboxRelay:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._topology = Topology.for_namespace(settings.namespace)
        self.consumer = consumer_name()
        self._streams: list[str] = []
        self._streams_at = 0.0
        self._claimed_at: dict[str, float] = {}
        self._own_pending: set[str] = set()
        self._stopping = asyncio.Event()
        self._channel: AbstractChannel | None = None

    def stop(self) -> None:
        """Finish the pass under way and return from run().

        A flag rather than only task.cancel(): on Python 3.11 a cancellation can be lost inside
        asyncio.wait_for (which aio-pika uses), leaving a loop that never ends.
        """
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                connection = await aio_pika.connect_robust(self._settings.amqp_url)
                async with connection:
                    channel = await connection.channel(publisher_confirms=True)
                    exchange, _, _ = await self._topology.declare(channel)
                    self._channel = channel
                    backoff = 0.1
                    await self._pump(exchange)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay stopped on an error; restarting", exc_info=True)
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _pump(self, exchange: AbstractExchange) -> None:
        idle_s = self._settings.relay_idle_ms / 1000
        while not self._stopping.is_set():
            moved = await self.relay_once(exchange)
            if moved == 0:
                await self._pause(idle_s)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def relay_once(self, exchange: AbstractExchange) -> int:
        """One pass over every outbox stream. Returns the number of orders published."""
        await self._refresh_streams()
        moved = 0
        for stream in self._streams:
            entries = await self._next_entries(stream)
            if entries:
                await self._publish(exchange, stream, entries)
                moved += len(entries)
        return moved

    async def _refresh_streams(self) -> None:
        now = time.monotonic()
        if now - self._streams_at < REGISTRY_REFRESH_S and self._streams:
            return
        await self._measure_queue()
        members = await self._redis.smembers(self._keys.outbox_registry)
        self._streams = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        self._streams_at = now
        if self._streams:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream in self._streams:
                    pipe.xlen(stream)
                lengths = await pipe.execute()
            metrics.OUTBOX_BACKLOG.set(sum(int(n) for n in lengths))
        else:
            metrics.OUTBOX_BACKLOG.set(0)

    async def _measure_queue(self) -> None:
        if self._channel is None:
            return
        declared = await self._channel.declare_queue(self._topology.orders_queue, passive=True)
        depth = declared.declaration_result.message_count
        metrics.ORDERS_QUEUE_DEPTH.set(depth or 0)

    async def _next_entries(self, stream: str) -> list[Entry]:
        try:
            return await self._entries(stream)
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            await self._recreate_group(stream)
            return []

    async def _recreate_group(self, stream: str) -> None:
        """The stream has lost its consumer group (Redis lost its data, or the key was deleted
        and made again). Recreate the group from the stream's start, so what it holds is still
        relayed, rather than let one stream fail every pass and stop the relay for all sales."""
        log.warning("outbox %s has no relay group; recreating it", stream)
        self._own_pending.discard(stream)
        # BUSYGROUP: another relay was first; no such key: nothing left to relay.
        with contextlib.suppress(ResponseError):
            await self._redis.xgroup_create(stream, RELAY_GROUP, id="0", mkstream=False)

    async def _entries(self, stream: str) -> list[Entry]:
        count = self._settings.relay_batch
        if stream in self._own_pending:
            # A publish failed earlier: resend what this consumer already holds first.
            entries = await self._read(stream, "0", count)
            if entries:
                return entries
            self._own_pending.discard(stream)
        entries = await self._claim_stale(stream, count)
        if entries:
            return entries
        return await self._read(stream, ">", count)

    async def _read(self, stream: str, start: str, count: int) -> list[Entry]:
        reply = await self._redis.xreadgroup(
            RELAY_GROUP, self.consumer, {stream: start}, count=count
        )
        if not reply:
            return []
        _, messages = reply[0]
        return [(entry_id, fields[b"o"]) for entry_id, fields in messages if fields]

    async def _claim_stale(self, stream: str, count: int) -> list[Entry]:
        idle_ms = self._settings.relay_claim_idle_ms
        now = time.monotonic()
        if now - self._claimed_at.get(stream, 0.0) < min(idle_ms / 2000, 5.0):
            return []
        self._claimed_at[stream] = now
        reply = await self._redis.xautoclaim(
            stream, RELAY_GROUP, self.consumer, idle_ms, start_id="0-0", count=count
        )
        messages = reply[1]
        entries = [(entry_id, fields[b"o"]) for entry_id, fields in messages if fields]
        if entries:
            metrics.RELAY_RECLAIMED.inc(len(entries))
            log.info("took over %d outbox entries of %s from a silent relay", len(entries), stream)
        return entries

    async def _publish(self, exchange: AbstractExchange, stream: str, entries: list[Entry]) -> None:
        message = aio_pika.Message(
            pack(entries),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await exchange.publish(message, self._topology.orders_routing_key, timeout=10)
        except Exception:
            metrics.RELAY_FAILURES.inc()
            self._own_pending.add(stream)
            raise
        ids = [entry_id for entry_id, _ in entries]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(stream, RELAY_GROUP, *ids)
            pipe.xdel(stream, *ids)
            await pipe.execute()
        metrics.RELAY_PUBLISHED.inc(len(entries))
