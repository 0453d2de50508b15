"""RabbitMQ names and declarations, built here and nowhere else.

Accepted orders travel on a durable quorum queue; a message that keeps failing with a data
error ends on the dead-letter queue for a person to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

ATTEMPTS_HEADER = "x-mall-attempts"


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str
    orders_queue: str
    dead_queue: str

    @classmethod
    def for_namespace(cls, namespace: str) -> Topology:
        return cls(
            exchange=f"{namespace}.orders",
            orders_queue=f"{namespace}.orders",
            dead_queue=f"{namespace}.orders.dead",
        )

    @property
    def orders_routing_key(self) -> str:
        return "accepted"

    @property
    def dead_routing_key(self) -> str:
        return "dead"

    async def declare(
        self, channel: AbstractChannel
    ) -> tuple[AbstractExchange, AbstractQueue, AbstractQueue]:
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        args = {"x-queue-type": "quorum"}
        orders = await channel.declare_queue(self.orders_queue, durable=True, arguments=args)
        dead = await channel.declare_queue(self.dead_queue, durable=True, arguments=args)
        await orders.bind(exchange, self.orders_routing_key)
        await dead.bind(exchange, self.dead_routing_key)
        return exchange, orders, dead
