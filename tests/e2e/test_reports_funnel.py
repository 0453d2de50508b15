"""The funnel on a generated stream of events and orders, against sets computed here."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.test_reports_helpers import (
    Order,
    as_csv_row,
    get_csv,
    get_report,
    insert_orders,
    make_catalog,
    new_order_id,
    shanghai,
    staff,
    tag,
)

START = shanghai(1992, 6, 1)
END = shanghai(1992, 6, 8)  # exclusive: the report is asked for 1992-06-01 to 1992-06-07
PARAMS = {"from": "1992-06-01", "to": "1992-06-07"}


def moment(rng: random.Random, inside: bool) -> datetime:
    if inside:
        return START + timedelta(seconds=rng.randrange(int((END - START).total_seconds())))
    # Just outside the period, on either side.
    return rng.choice((START - timedelta(seconds=rng.randrange(1, 3600)),
                       END + timedelta(seconds=rng.randrange(0, 3600))))


@pytest.fixture(scope="module")
async def stream(pg: asyncpg.Pool) -> dict[str, set[str]]:
    """Events and orders of 300 generated users; returns who reached each step, computed
    from the generated data alone."""
    rng = random.Random(1992)
    prefix = f"fn{tag()}-"
    sku = (await make_catalog(pg, 1)).skus[0]
    did: dict[str, set[str]] = {"view": set(), "cart": set(), "order": set(), "paid": set()}
    events: list[tuple[datetime, str, str | None, int | None]] = []
    orders: list[Order] = []
    for n in range(300):
        user = f"{prefix}{n}"
        for kind, p in (("view", 0.8), ("cart", 0.5)):
            for _ in range(rng.randint(0, 3)):
                inside = rng.random() < p
                events.append((moment(rng, inside), kind, user, 1))
                if inside:
                    did[kind].add(user)
        for _ in range(rng.randint(0, 2)):
            created = moment(rng, rng.random() < 0.6)
            order = Order(new_order_id(), user, "pending_payment", created, [(sku, 1, 100)])
            if rng.random() < 0.6:
                order.status = "paid"
                order.paid_at = created + timedelta(minutes=rng.randrange(0, 600))
                order.paid_amount = 100
            orders.append(order)
            if START <= created < END:
                did["order"].add(user)
            if order.paid_at is not None and START <= order.paid_at < END:
                did["paid"].add(user)
    # Anonymous views are not users; they must not count.
    events += [(START + timedelta(hours=h), "view", None, 1) for h in range(20)]
    async with pg.acquire() as conn:
        await conn.executemany(
            "INSERT INTO events (at, kind, user_id, product_id) VALUES ($1, $2, $3, $4)", events)
    await insert_orders(pg, orders)
    view = did["view"]
    cart = did["cart"] & view
    order = did["order"] & cart
    return {"view": view, "cart": cart, "order": order, "paid": did["paid"] & order}


async def test_funnel_counts_users_who_did_every_step_before(
        client: TestClient, settings: Settings, stream: dict[str, set[str]]) -> None:
    report = await get_report(client, settings, "funnel", **PARAMS)
    users = {r["step"]: r["users"] for r in report["rows"]}
    expected = {step: len(who) for step, who in stream.items()}
    assert users == expected
    assert [r["step"] for r in report["rows"]] == ["view", "cart", "order", "paid"]
    assert expected["paid"] > 5  # the stream really reaches the last step
    steps = report["rows"]
    assert steps[0]["rate_from_previous"] is None and steps[0]["rate_from_first"] == 1.0
    for before, after in zip(steps, steps[1:], strict=False):
        assert after["rate_from_previous"] == round(after["users"] / before["users"], 4)
        assert after["rate_from_first"] == round(after["users"] / steps[0]["users"], 4)


async def test_funnel_csv_equals_json_and_chart_shows_it(
        client: TestClient, settings: Settings, stream: dict[str, set[str]]) -> None:
    report = await get_report(client, settings, "funnel", **PARAMS)
    assert await get_csv(client, settings, "funnel", **PARAMS) == [
        as_csv_row(r) for r in report["rows"]]
    resp = await client.get("/api/v1/admin/reports/funnel/chart.svg", params=PARAMS,
                            headers=staff(settings))
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
    svg = await resp.text()
    for step, who in stream.items():
        assert f">{step}</text>" in svg
        assert f"{len(who):,} users" in svg


async def test_an_empty_period_is_all_zero(client: TestClient, settings: Settings) -> None:
    report = await get_report(client, settings, "funnel", **{"from": "1970-01-05",
                                                             "to": "1970-01-06"})
    assert [(r["users"], r["rate_from_first"]) for r in report["rows"]] == [(0, None)] * 4
