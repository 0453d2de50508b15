"""Provider callbacks: verified on the raw body, recorded once, applied once.

Every callback is recorded in payment_events, forged ones included. One that is genuine is
handled under a transaction-scoped lock on its event id, so a replay (however concurrent)
finds the first one's record and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from checkout.payments import store
from checkout.payments.base import (
    CallbackEvent,
    InvalidSignature,
    MalformedCallback,
    PaymentProvider,
)
from checkout.payments.metrics import CALLBACKS
from checkout.payments.settlement import (
    Applied,
    Outcome,
    apply_failure,
    apply_payment,
    lock_payment_and_order,
)
from mall.errors import ApiError, invalid
from order_writer.lifecycle import Refunder, settle

log = logging.getLogger(__name__)
MAX_AMOUNT = 10**13


@dataclass(frozen=True, slots=True)
class CallbackResult:
    applied: Applied
    replayed: bool = False


def usable(event: CallbackEvent) -> CallbackEvent:
    """Even a genuine event must carry ids the database can store."""
    if not (store.plausible_id(event.event_id) and store.plausible_id(event.payment_id)
            and (event.provider_ref is None or store.plausible_id(event.provider_ref))):
        raise MalformedCallback("the event's ids are empty, too long or not printable")
    if not 0 <= event.amount <= MAX_AMOUNT:
        raise MalformedCallback("the event's amount is out of range")
    return event


class CallbackHandler:
    def __init__(self, pool: asyncpg.Pool, refunder: Refunder) -> None:
        self._pool = pool
        self._refunder = refunder

    async def handle(self, provider: PaymentProvider, headers: Mapping[str, str],
                     raw_body: bytes) -> CallbackResult:
        name = provider.info.name
        try:
            event = usable(provider.verify_callback(headers, raw_body))
        except InvalidSignature:
            CALLBACKS.labels(name, "invalid_signature").inc()
            await self._record_untrusted(name, raw_body, False, "invalid_signature")
            log.warning("rejected a %s callback with an invalid signature (%d bytes)",
                        name, len(raw_body))
            raise ApiError(401, "invalid_signature",
                           "the callback signature is not valid") from None
        except MalformedCallback as exc:
            CALLBACKS.labels(name, "malformed").inc()
            await self._record_untrusted(name, raw_body, True, "malformed")
            raise invalid(f"the callback cannot be used: {exc}") from None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(store.LOCK_EVENT, f"payment_event:{name}:{event.event_id}")
            first = await conn.fetchrow(store.SELECT_EVENT, name, event.event_id)
            if first is not None:
                CALLBACKS.labels(name, "replayed").inc()
                return CallbackResult(Applied(Outcome(first["outcome"]), first["payment_id"]),
                                      replayed=True)
            applied = await self._apply(conn, name, event)
            await store.record_event(conn, name, event.event_id, applied.payment_id, raw_body,
                                     True, applied.outcome)
        CALLBACKS.labels(name, applied.outcome.value).inc()
        await settle(self._refunder, [applied.refund])
        return CallbackResult(applied)

    async def _record_untrusted(self, name: str, raw_body: bytes, signature_valid: bool,
                                outcome: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await store.record_event(conn, name, None, None, raw_body, signature_valid, outcome)

    async def _apply(self, conn: asyncpg.Connection, name: str, event: CallbackEvent) -> Applied:
        payment = await store.get(conn, event.payment_id)
        if payment is None or payment.provider != name:
            return Applied(Outcome.UNKNOWN_PAYMENT)
        if event.order_id not in (None, payment.order_id) or event.currency != payment.currency:
            return Applied(Outcome.INVALID_EVENT, payment.id)
        payment = await lock_payment_and_order(conn, payment)
        if event.status == "pending":
            return Applied(Outcome.PENDING, payment.id)
        if event.status == "failed":
            return await apply_failure(conn, payment)
        return await apply_payment(conn, payment, event.amount, event.provider_ref,
                                   actor=f"provider:{name}")
