"""The order writer: consumes accepted orders from RabbitMQ and persists them in batches.

Messages are acknowledged only after their batch committed. A batch that fails on a connection
or lock error is retried with its messages held (PostgreSQL may be restarting); one that fails
on a data error is split, and the message at fault is put back with an attempt count, then
dead-lettered once it has failed `writer_max_attempts` times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import msgspec
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from mall.resources import make_pg_pool
from mall.settings import Settings
from mall.topology import ATTEMPTS_HEADER, Topology
from order_writer import metrics
from order_writer.store import AcceptedOrder, decode_orders, write_orders

log = logging.getLogger(__name__)

_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "57", "58"}
MAX_BACKOFF_S = 5.0
DRAIN_TIMEOUT_S = 10.0


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return isinstance(
        exc, (OSError, ConnectionError, TimeoutError, asyncpg.InterfaceError)
    )


@dataclass(slots=True)
class Delivery:
    message: AbstractIncomingMessage
    orders: list[AcceptedOrder]


class OrderWriter:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topology = Topology.for_namespace(settings.namespace)
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._exchange: AbstractExchange | None = None
        self._background: set[asyncio.Future[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self._pool = await self._connect_pg()
        connection = await aio_pika.connect_robust(self._settings.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self._settings.writer_prefetch)
            self._exchange, queue, _ = await self._topology.declare(channel)
            tag = await queue.consume(self._inbox.put, no_ack=False)
            log.info("writer consuming %s", self._topology.orders_queue)
            await self._write_until_stopped()
            await queue.cancel(tag)
            await asyncio.wait_for(self._drain(), DRAIN_TIMEOUT_S)
            await asyncio.gather(*self._background, return_exceptions=True)
        finally:
            await connection.close()
            await self._pool.close()

    async def _connect_pg(self) -> asyncpg.Pool:
        backoff = 0.2
        while True:
            try:
                return await make_pg_pool(self._settings)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("PostgreSQL not reachable yet; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _write_until_stopped(self) -> None:
        while not self._stopping.is_set():
            batch = await self._collect()
            if batch:
                await self._write(batch)

    async def _drain(self) -> None:
        while not self._inbox.empty():
            await self._write(self._take_ready(self._settings.writer_batch_orders))

    async def _collect(self) -> list[Delivery]:
        """Wait for a first message, then take more until the batch is full or the linger ends."""
        getter = asyncio.ensure_future(self._inbox.get())
        stopper = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not getter.done():
            getter.cancel()
            return []
        batch: list[Delivery] = []
        size = self._add(batch, getter.result())
        deadline = time.monotonic() + self._settings.writer_linger_ms / 1000
        while size < self._settings.writer_batch_orders:
            if self._inbox.empty():
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    message = await asyncio.wait_for(self._inbox.get(), timeout)
                except TimeoutError:
                    break
            else:
                message = self._inbox.get_nowait()
            size += self._add(batch, message)
        return batch

    def _take_ready(self, limit: int) -> list[Delivery]:
        batch: list[Delivery] = []
        size = 0
        while size < limit and not self._inbox.empty():
            size += self._add(batch, self._inbox.get_nowait())
        return batch

    def _add(self, batch: list[Delivery], message: AbstractIncomingMessage) -> int:
        try:
            orders = decode_orders(message.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._spawn(self._dead_letter(message, f"undecodable body: {exc}"))
            return 0
        batch.append(Delivery(message, orders))
        return len(orders)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write(self, batch: list[Delivery]) -> None:
        if not batch:
            return
        backoff = 0.1
        while True:
            try:
                await self._write_once(batch)
                return
            except Exception as exc:
                if is_transient(exc):
                    metrics.TRANSIENT_ERRORS.inc()
                    log.warning("batch hit a transient error (%s); retrying in %.1fs",
                                type(exc).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                if len(batch) > 1:
                    for delivery in batch:
                        await self._write([delivery])
                    return
                await self._retry_or_dead_letter(batch[0].message, repr(exc))
                return

    async def _write_once(self, batch: list[Delivery]) -> None:
        assert self._pool is not None
        orders = [o for d in batch for o in d.orders]
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            result = await write_orders(conn, orders)
        now = time.time()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_ORDERS.observe(len(orders))
        metrics.PERSISTED.inc(len(result.inserted))
        metrics.DUPLICATES.inc(result.duplicates)
        accepted_at = {o.order_id: o.accepted_at_ms for o in orders}
        for order_id in result.inserted:
            metrics.ACCEPT_TO_PERSIST_SECONDS.observe(max(0.0, now - accepted_at[order_id] / 1000))
        for delivery in batch:
            await self._ack(delivery.message)

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.ack()
        except Exception:
            # The channel went away after the commit: RabbitMQ redelivers, ON CONFLICT skips.
            log.warning("could not acknowledge a written message; it will be redelivered")

    async def _retry_or_dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0) or 0) + 1  # type: ignore[arg-type]
        if attempts >= self._settings.writer_max_attempts:
            await self._dead_letter(message, reason, attempts)
            return
        log.warning("message failed (attempt %d): %s; putting it back", attempts, reason)
        await self._republish(message, self._topology.orders_routing_key, attempts, reason)
        metrics.RETRIED.inc()

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, attempts: int = 1
    ) -> None:
        log.error("dead-lettering a message after %d attempt(s): %s", attempts, reason)
        await self._republish(message, self._topology.dead_routing_key, attempts, reason)
        metrics.DEAD_LETTERED.inc()

    async def _republish(
        self, message: AbstractIncomingMessage, routing_key: str, attempts: int, reason: str
    ) -> None:
        assert self._exchange is not None
        copy = aio_pika.Message(
            message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={ATTEMPTS_HEADER: attempts, "x-mall-error": reason[:500]},
        )
        await self._exchange.publish(copy, routing_key, timeout=10)
        await self._ack(message)
