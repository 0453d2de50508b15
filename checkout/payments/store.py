"""The payments and payment_events tables: every statement, named, and the row type."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from checkout.payments.base import PaymentIntent, PaymentRef

COLUMNS = """id, order_id, user_id, provider, amount, currency, status, provider_ref, intent,
confirmed_by, refunded_amount, created_at, updated_at"""

SELECT_ORDER = "SELECT order_id, user_id, status, total, currency FROM orders WHERE order_id = $1"
INSERT_PAYMENT = f"""
INSERT INTO payments (id, order_id, user_id, provider, amount, currency)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (order_id, provider) WHERE status = 'created' DO NOTHING
RETURNING {COLUMNS}
"""
SELECT_OPEN = f"""
SELECT {COLUMNS} FROM payments WHERE order_id = $1 AND provider = $2 AND status = 'created'
"""
SET_INTENT = f"""
UPDATE payments SET intent = $2::jsonb, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}
"""
SELECT_PAYMENT = f"SELECT {COLUMNS} FROM payments WHERE id = $1"
LOCK_PAYMENT = f"SELECT {COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
PAYMENT_OF_ORDER = f"""
SELECT {', '.join('p.' + c.strip() for c in COLUMNS.split(','))}
FROM orders o JOIN payments p ON p.id = o.payment_ref AND p.provider = o.payment_provider
WHERE o.order_id = $1
"""
MARK_SUCCEEDED = """
UPDATE payments SET status = 'succeeded', provider_ref = coalesce($2, provider_ref),
    confirmed_by = $3, updated_at = now()
WHERE id = $1
"""
MARK_FAILED = """
UPDATE payments SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'created'
"""
ADD_REFUND = """
UPDATE payments SET refunded_amount = least(amount, refunded_amount + $2),
    status = CASE WHEN refunded_amount + $2 >= amount THEN 'refunded' ELSE status END,
    updated_at = now()
WHERE id = $1
"""
# Serialises the handling of one event id (a row that does not exist yet cannot be locked).
LOCK_EVENT = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
SELECT_EVENT = """
SELECT outcome, payment_id FROM payment_events WHERE provider = $1 AND event_id = $2
"""
INSERT_EVENT = """
INSERT INTO payment_events (provider, event_id, payment_id, raw_body, signature_valid, outcome)
VALUES ($1, $2, $3, $4, $5, $6)
"""


def plausible_id(value: str | None, limit: int = 128) -> bool:
    """An id worth looking up: bounded and printable (PostgreSQL text refuses NUL)."""
    return value is not None and 0 < len(value) <= limit and value.isprintable()


def new_payment_id() -> str:
    # 32 characters: the longest merchant trade number WeChat Pay accepts.
    return "pay" + secrets.token_hex(16)[:29]


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    order_id: str
    user_id: str
    provider: str
    amount: int
    currency: str
    status: str
    provider_ref: str | None
    intent: dict[str, Any] | None
    confirmed_by: str | None
    refunded_amount: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Payment:
        values = dict(row)
        values["intent"] = orjson.loads(row["intent"]) if row["intent"] is not None else None
        return cls(**values)

    def ref(self) -> PaymentRef:
        return PaymentRef(self.id, self.order_id, self.amount, self.currency, self.provider_ref)

    def view(self) -> dict[str, Any]:
        intent = self.intent or {}
        return {
            "payment_id": self.id,
            "order_id": self.order_id,
            "provider": self.provider,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "pay_url": intent.get("pay_url"),
            "qr_payload": intent.get("qr_payload"),
            "instructions": intent.get("instructions"),
            "provider_ref": self.provider_ref,
            "refunded_amount": self.refunded_amount,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "updated_at": self.updated_at.astimezone(UTC).isoformat(),
        }


async def get(conn: asyncpg.Connection | asyncpg.Pool, payment_id: str) -> Payment | None:
    if not plausible_id(payment_id, 32):
        return None
    row = await conn.fetchrow(SELECT_PAYMENT, payment_id)
    return Payment.of(row) if row else None


async def lock(conn: asyncpg.Connection, payment_id: str) -> Payment:
    return Payment.of(await conn.fetchrow(LOCK_PAYMENT, payment_id))


async def open_payment(conn: asyncpg.Connection, order: asyncpg.Record,
                       provider: str) -> tuple[Payment | None, bool]:
    """The order's open payment with `provider`, created unless one exists; and whether new."""
    row = await conn.fetchrow(INSERT_PAYMENT, new_payment_id(), order["order_id"],
                              order["user_id"], provider, order["total"], order["currency"])
    if row is not None:
        return Payment.of(row), True
    row = await conn.fetchrow(SELECT_OPEN, order["order_id"], provider)
    return (Payment.of(row) if row else None), False


async def set_intent(pool: asyncpg.Pool, payment_id: str, intent: PaymentIntent) -> Payment:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(SET_INTENT, payment_id, orjson.dumps(intent.as_dict()).decode())
    return Payment.of(row)


async def record_event(conn: asyncpg.Connection | asyncpg.Pool, provider: str,
                       event_id: str | None, payment_id: str | None, raw_body: bytes,
                       signature_valid: bool, outcome: str) -> None:
    await conn.execute(INSERT_EVENT, provider, event_id, payment_id, raw_body, signature_valid,
                       outcome)
