"""Callbacks on real PostgreSQL: replays, concurrent duplicates, amount mismatch, forgery, and
a payment that lands after the order was cancelled."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from checkout.payments.base import ProviderUnavailable
from checkout.payments.callbacks import CallbackHandler
from checkout.payments.config import sandbox_secret
from checkout.payments.refunds import PaymentsRefunder
from checkout.payments.sandbox import SandboxProvider
from checkout.payments.service import PaymentService, Urls
from checkout.payments.settlement import Outcome
from mall.errors import ApiError
from mall.settings import Settings
from order_writer.lifecycle import RefundDue, cancel_order, settle

TOTAL = 2599


@pytest.fixture(scope="module")
def sandbox(settings: Settings) -> SandboxProvider:
    return SandboxProvider(sandbox_secret(settings.jwt_secret))


@pytest.fixture(scope="module")
def parts(pg: asyncpg.Pool, sandbox: SandboxProvider) -> tuple[PaymentService, CallbackHandler]:
    providers = {"sandbox": sandbox}
    refunder = PaymentsRefunder(pg, providers)
    return PaymentService(pg, providers, refunder), CallbackHandler(pg, refunder)


async def insert_order(pg: asyncpg.Pool, user: str, total: int = TOTAL) -> str:
    order_id = f"tp-{uuid.uuid4().hex}"
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO orders (order_id, user_id, status, total, created_at)"
            " VALUES ($1, $2, 'pending_payment', $3, $4)", order_id, user, total,
            datetime.now(UTC))
    return order_id


async def open_sandbox_payment(parts: tuple[PaymentService, CallbackHandler], pg: asyncpg.Pool,
                               user: str = "cb-user") -> tuple[str, str]:
    order_id = await insert_order(pg, user)
    payment, created = await parts[0].create(user, order_id, "sandbox",
                                             Urls("http://mall.test"))
    assert created and payment.status == "created" and payment.amount == TOTAL
    return order_id, payment.id


def signed(sandbox: SandboxProvider, payment_id: str, order_id: str, amount: int = TOTAL,
           event_id: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"event_id": event_id or f"evt_{uuid.uuid4().hex}",
                       "payment_id": payment_id, "order_id": order_id, "amount": amount,
                       "status": "succeeded"}).encode()
    return {"X-Sandbox-Signature": sandbox.sign(body)}, body


async def paid_steps(pg: asyncpg.Pool, order_id: str) -> int:
    return int(await pg.fetchval(
        "SELECT count(*) FROM order_history WHERE order_id = $1 AND to_status = 'paid'"
        " AND from_status = 'pending_payment'", order_id))


async def state(pg: asyncpg.Pool, order_id: str) -> tuple[str, list[str]]:
    status = await pg.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id)
    payments = await pg.fetch("SELECT status FROM payments WHERE order_id = $1", order_id)
    return status, [p["status"] for p in payments]


async def test_a_genuine_callback_pays_the_order(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    result = await parts[1].handle(sandbox, *signed(sandbox, payment_id, order_id))
    assert result.applied.outcome is Outcome.PAID and not result.replayed
    assert await state(pg, order_id) == ("paid", ["succeeded"])
    order = await pg.fetchrow("SELECT paid_amount, payment_provider, payment_ref FROM orders"
                              " WHERE order_id = $1", order_id)
    assert tuple(order) == (TOTAL, "sandbox", payment_id)


async def test_a_replayed_callback_changes_nothing(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    headers, body = signed(sandbox, payment_id, order_id)
    first = await parts[1].handle(sandbox, headers, body)
    updated = await pg.fetchval("SELECT updated_at FROM payments WHERE id = $1", payment_id)
    again = await parts[1].handle(sandbox, headers, body)
    assert first.applied.outcome is Outcome.PAID
    assert again.replayed and again.applied.outcome is Outcome.PAID
    assert await paid_steps(pg, order_id) == 1
    assert await state(pg, order_id) == ("paid", ["succeeded"])
    assert await pg.fetchval("SELECT updated_at FROM payments WHERE id = $1",
                             payment_id) == updated
    event_id = json.loads(body)["event_id"]
    assert await pg.fetchval("SELECT count(*) FROM payment_events WHERE event_id = $1",
                             event_id) == 1


async def test_another_event_for_the_same_payment_is_already_paid(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    await parts[1].handle(sandbox, *signed(sandbox, payment_id, order_id))
    second = await parts[1].handle(sandbox, *signed(sandbox, payment_id, order_id))
    assert second.applied.outcome is Outcome.ALREADY_PAID and not second.replayed
    assert await paid_steps(pg, order_id) == 1


async def test_concurrent_duplicate_callbacks_pay_once(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    headers, body = signed(sandbox, payment_id, order_id)
    results = await asyncio.gather(*(parts[1].handle(sandbox, headers, body) for _ in range(5)))
    assert [r.applied.outcome for r in results] == [Outcome.PAID] * 5
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    assert await paid_steps(pg, order_id) == 1
    assert await state(pg, order_id) == ("paid", ["succeeded"])


async def test_amount_mismatch_leaves_the_order_pending(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    headers, body = signed(sandbox, payment_id, order_id, amount=TOTAL - 1)
    result = await parts[1].handle(sandbox, headers, body)
    assert result.applied.outcome is Outcome.AMOUNT_MISMATCH
    assert result.applied.details == {"expected": TOTAL, "received": TOTAL - 1}
    assert await state(pg, order_id) == ("pending_payment", ["created"])
    assert await paid_steps(pg, order_id) == 0
    outcome = await pg.fetchval("SELECT outcome FROM payment_events WHERE event_id = $1",
                                json.loads(body)["event_id"])
    assert outcome == "amount_mismatch"


async def test_a_forged_callback_is_recorded_and_refused(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    headers, body = signed(sandbox, payment_id, order_id)
    before = await pg.fetchval("SELECT count(*) FROM payment_events WHERE NOT signature_valid")
    with pytest.raises(ApiError) as caught:
        await parts[1].handle(sandbox, {"X-Sandbox-Signature": "ab" * 32}, body)
    assert (caught.value.status, caught.value.code) == (401, "invalid_signature")
    assert await state(pg, order_id) == ("pending_payment", ["created"])
    rows = await pg.fetch("SELECT event_id, raw_body, outcome FROM payment_events"
                          " WHERE NOT signature_valid ORDER BY id DESC")
    assert len(rows) == before + 1
    assert (rows[0]["event_id"], bytes(rows[0]["raw_body"]), rows[0]["outcome"]) == (
        None, body, "invalid_signature")
    # The forged copy claimed the event id without taking it: the genuine event still pays.
    assert (await parts[1].handle(sandbox, headers, body)).applied.outcome is Outcome.PAID


async def test_payment_after_cancellation_is_refunded(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    async with pg.acquire() as conn, conn.transaction():
        await cancel_order(conn, order_id, "system", "payment_timeout")
    result = await parts[1].handle(sandbox, *signed(sandbox, payment_id, order_id))
    assert result.applied.outcome is Outcome.REFUND_DUE
    assert await state(pg, order_id) == ("cancelled", ["refunded"])
    refund = await pg.fetchrow("SELECT status, amount, provider_ref FROM refunds"
                               " WHERE order_id = $1", order_id)
    assert refund["status"] == "completed" and refund["amount"] == TOTAL
    assert refund["provider_ref"].startswith("sbx-rf")
    assert await paid_steps(pg, order_id) == 0


async def test_payment_events_are_append_only(pg) -> None:
    with pytest.raises(asyncpg.PostgresError):
        await pg.execute("UPDATE payment_events SET outcome = 'paid'")
    with pytest.raises(asyncpg.PostgresError):
        await pg.execute("DELETE FROM payment_events")


async def test_a_callback_for_another_order_or_payment_is_refused(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    other_order, _ = await open_sandbox_payment(parts, pg)
    wrong_order = await parts[1].handle(sandbox, *signed(sandbox, payment_id, other_order))
    unknown = await parts[1].handle(sandbox, *signed(sandbox, "pay-nope", order_id))
    assert wrong_order.applied.outcome is Outcome.INVALID_EVENT
    assert unknown.applied.outcome is Outcome.UNKNOWN_PAYMENT
    assert await state(pg, order_id) == ("pending_payment", ["created"])
    assert await state(pg, other_order) == ("pending_payment", ["created"])


class OddProvider(SandboxProvider):
    """A provider whose genuine events carry ids PostgreSQL cannot store."""

    def verify_callback(self, headers, raw_body):  # type: ignore[no-untyped-def]
        event = super().verify_callback(headers, raw_body)
        return replace(event, event_id=event.event_id + "\x00", amount=10**20)


async def test_unstorable_event_ids_are_refused_not_crashed(parts, pg, settings) -> None:
    odd = OddProvider(sandbox_secret(settings.jwt_secret))
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    with pytest.raises(ApiError) as caught:
        await parts[1].handle(odd, *signed(odd, payment_id, order_id))
    assert (caught.value.status, caught.value.code) == (422, "invalid_request")
    assert await state(pg, order_id) == ("pending_payment", ["created"])


class DownProvider(SandboxProvider):
    """A provider whose refund gateway does not answer."""

    async def refund(self, payment, amount, refund_no):  # type: ignore[no-untyped-def]
        raise ProviderUnavailable("gateway down")


async def test_cancelling_a_paid_order_refunds_through_its_payment(parts, pg, sandbox) -> None:
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    await parts[1].handle(sandbox, *signed(sandbox, payment_id, order_id))
    async with pg.acquire() as conn, conn.transaction():
        cancellation = await cancel_order(conn, order_id, "cb-user", "changed_mind")
    assert cancellation.refund is not None and cancellation.refund.source == "cancel"
    await settle(PaymentsRefunder(pg, {"sandbox": sandbox}), [cancellation.refund])
    assert await state(pg, order_id) == ("cancelled", ["refunded"])
    assert await pg.fetchval("SELECT status FROM refunds WHERE order_id = $1",
                             order_id) == "completed"


async def test_a_refund_the_provider_fails_stays_requested(parts, pg, settings) -> None:
    down = DownProvider(sandbox_secret(settings.jwt_secret))
    order_id, payment_id = await open_sandbox_payment(parts, pg)
    await pg.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = $1", order_id)
    handler = CallbackHandler(pg, PaymentsRefunder(pg, {"sandbox": down}))
    result = await handler.handle(down, *signed(down, payment_id, order_id))
    assert result.applied.outcome is Outcome.REFUND_DUE
    assert await state(pg, order_id) == ("cancelled", ["succeeded"])
    assert await pg.fetchval("SELECT status FROM refunds WHERE order_id = $1",
                             order_id) == "requested"
    # Offered again (as the sweeper does) once the provider is back: refunded once.
    due = await pg.fetchrow("SELECT id, order_id, source, amount, currency FROM refunds"
                            " WHERE order_id = $1", order_id)
    refunder = PaymentsRefunder(pg, {"sandbox": SandboxProvider(sandbox_secret(
        settings.jwt_secret))})
    await settle(refunder, [RefundDue.of(due), RefundDue.of(due)])
    assert await state(pg, order_id) == ("cancelled", ["refunded"])
    assert await pg.fetchval("SELECT refunded_amount FROM payments WHERE id = $1",
                             payment_id) == TOTAL
