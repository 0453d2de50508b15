"""The transition table, enforced under the row lock, with every step in an append-only history."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from mall.errors import ApiError
from order_writer.lifecycle import STATUSES, TRANSITIONS, transition
from tests.integration.test_lifecycle_helpers import make_order, status_of, steps

ILLEGAL = [(src, dst) for src in STATUSES for dst in STATUSES if dst not in TRANSITIONS[src]]
LEGAL = [(src, dst) for src in STATUSES for dst in sorted(TRANSITIONS[src])]
ROOT = Path(__file__).resolve().parents[2]


def test_the_table_is_the_documented_lifecycle() -> None:
    assert TRANSITIONS == {
        "queued": {"pending_payment"},
        "pending_payment": {"paid", "cancelled"},
        "paid": {"shipped", "cancelled"},
        "shipped": {"delivered", "completed"},
        "delivered": {"completed", "refunded"},
        "completed": {"refunded"},
        "cancelled": set(),
        "refunded": set(),
    }


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=[f"{s}->{d}" for s, d in ILLEGAL])
async def test_illegal_transition_is_409_with_the_current_status(pg: asyncpg.Pool, src: str,
                                                                 dst: str) -> None:
    order = await make_order(pg, src)
    before = await steps(pg, order.order_id)
    async with pg.acquire() as conn:
        with pytest.raises(ApiError) as caught:
            async with conn.transaction():
                await transition(conn, order.order_id, dst, "staff1", "test")
    assert caught.value.status == 409 and caught.value.code == "illegal_transition"
    assert caught.value.details == {"current_status": src, "requested_status": dst}
    assert await status_of(pg, order.order_id) == src
    assert await steps(pg, order.order_id) == before


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=[f"{s}->{d}" for s, d in LEGAL])
async def test_legal_transition_moves_and_records_the_step(pg: asyncpg.Pool, src: str,
                                                           dst: str) -> None:
    order = await make_order(pg, src)
    async with pg.acquire() as conn, conn.transaction():
        left = await transition(conn, order.order_id, dst, "staff1", "test", {"k": 1})
    assert left == src
    assert await status_of(pg, order.order_id) == dst
    assert (await steps(pg, order.order_id))[-1] == (src, dst, "test", "staff1")
    details = await pg.fetchval("SELECT details FROM order_history WHERE order_id = $1"
                                " ORDER BY id DESC LIMIT 1", order.order_id)
    assert details == '{"k": 1}'


async def test_expected_from_guards_a_stale_decision(pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "paid")
    async with pg.acquire() as conn:
        with pytest.raises(ApiError) as caught:
            async with conn.transaction():
                await transition(conn, order.order_id, "cancelled", "system", "payment_timeout",
                                 expected_from="pending_payment")
    assert caught.value.status == 409
    assert caught.value.details is not None and caught.value.details["current_status"] == "paid"
    assert await status_of(pg, order.order_id) == "paid"


async def test_unknown_order_is_404_and_a_transaction_is_required(pg: asyncpg.Pool) -> None:
    async with pg.acquire() as conn:
        with pytest.raises(ApiError) as caught:
            async with conn.transaction():
                await transition(conn, "fs1-nope", "paid", "u", "test")
        assert caught.value.status == 404
        order = await make_order(pg)
        with pytest.raises(RuntimeError):
            await transition(conn, order.order_id, "paid", "u", "test")
    assert await status_of(pg, order.order_id) == "pending_payment"


async def test_the_writer_insert_records_the_first_step(pg: asyncpg.Pool) -> None:
    order = await make_order(pg)
    assert await steps(pg, order.order_id) == [
        ("queued", "pending_payment", "order_persisted", "system")]


@pytest.mark.parametrize("statement", [
    "UPDATE order_history SET reason = 'rewritten' WHERE order_id = $1",
    "DELETE FROM order_history WHERE order_id = $1",
])
async def test_history_refuses_update_and_delete(pg: asyncpg.Pool, statement: str) -> None:
    order = await make_order(pg)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pg.execute(statement, order.order_id)
    assert await steps(pg, order.order_id) == [
        ("queued", "pending_payment", "order_persisted", "system")]


async def test_history_refuses_truncate(pg: asyncpg.Pool) -> None:
    async with pg.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with conn.transaction():
                await conn.execute("TRUNCATE order_history CASCADE")


def test_only_the_state_machine_writes_order_status() -> None:
    """Besides the writer's INSERT, no module updates orders.status but lifecycle.py."""
    pattern = re.compile(r"UPDATE\s+orders\b[^;\"]*?\bSET\b[^;\"]*?\bstatus\s*=", re.I | re.S)
    writers = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests", "build"} or "site-packages" in path.parts:
            continue
        if pattern.search(path.read_text(encoding="utf-8")):
            writers.add(str(relative))
    assert writers == {"order_writer/lifecycle.py"}
