"""The event sink on real PostgreSQL: events recorded by real requests land in `events`, a
full buffer drops and counts, a full batch is written without waiting, and shutdown flushes."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from analytics.events import EVENT_SINK, EventSink, record
from mall.app import create_app
from mall.settings import Settings
from tests.stack import auth


def user() -> str:
    return f"ev{uuid.uuid4().hex[:12]}"


async def rows_of(pg: asyncpg.Pool, user_id: str) -> list[asyncpg.Record]:
    return list(await pg.fetch("SELECT kind, user_id, product_id, sku_id, query, results"
                               " FROM events WHERE user_id = $1 ORDER BY id", user_id))


async def wait_rows(pg: asyncpg.Pool, sql: str, *args: Any, want: int,
                    timeout_s: float = 5.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        found = int(await pg.fetchval(sql, *args))
        if found >= want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("mall_analytics_events_dropped_total",
                                     {"reason": reason}) or 0.0


def app_with(sink: EventSink) -> web.Application:
    app = web.Application()
    app[EVENT_SINK] = sink
    return app


async def test_views_and_searches_over_http_land_in_postgres(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    term = f"nothing{uuid.uuid4().hex[:10]}"
    name = f"Lamp {term[7:]}"
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, "evstaff", "staff"),
                             json={"name": name, "skus": [{"price": 100, "stock": 5}]})
    assert resp.status == 201, await resp.text()
    product_id = (await resp.json())["id"]
    viewer = user()
    for headers in (auth(settings, viewer), {}):
        resp = await client.get(f"/api/v1/products/{product_id}", headers=headers)
        assert resp.status == 200
    resp = await client.get("/api/v1/products", params={"q": term})
    assert resp.status == 200 and (await resp.json())["items"] == []
    resp = await client.get("/api/v1/products", params={"q": name})
    assert resp.status == 200 and len((await resp.json())["items"]) == 1

    found = await wait_rows(pg, "SELECT count(*) FROM events WHERE product_id = $1", product_id,
                            want=2)
    assert found == 2
    assert [tuple(r) for r in await rows_of(pg, viewer)] == [
        ("view", viewer, product_id, None, None, None)]
    assert await pg.fetchval("SELECT count(*) FROM events WHERE product_id = $1"
                             " AND user_id IS NULL", product_id) == 1
    await wait_rows(pg, "SELECT count(*) FROM events WHERE query IN ($1, $2)", term, name,
                    want=2)
    searches = await pg.fetch("SELECT query, results, user_id FROM events WHERE kind = 'search'"
                              " AND query IN ($1, $2) ORDER BY id", term, name)
    assert [tuple(r) for r in searches] == [(term, 0, None), (name, 1, None)]


async def test_a_full_buffer_drops_and_counts(pg: asyncpg.Pool) -> None:
    sink = EventSink(pg, capacity=5, batch_size=1000, interval_s=60)
    app = app_with(sink)
    who = user()
    before = dropped("buffer_full")
    for i in range(8):
        record(app, "view", user_id=who, product_id=i + 1)
    assert len(sink) == 5 and sink.dropped == 3
    assert dropped("buffer_full") - before == 3
    await sink.drain()
    assert [r["product_id"] for r in await rows_of(pg, who)] == [1, 2, 3, 4, 5]


async def test_bad_events_never_raise_and_never_reach_the_buffer(pg: asyncpg.Pool) -> None:
    sink = EventSink(pg, capacity=100, interval_s=60)
    app = app_with(sink)
    before = dropped("invalid")
    record(app, "purchase", user_id=user())
    record(app, "search", query="x", results=-1)
    record(app, "view", user_id="u" * 65)
    record(app, "search", query="q" * 500, results=3)  # kept, cut to the column's limit
    record(web.Application(), "view")  # an app without a sink: nothing happens
    assert len(sink) == 1 and dropped("invalid") - before == 3
    await sink.drain()
    assert sink.closed
    record(app, "view", user_id=user())  # after shutdown: counted, not buffered
    assert len(sink) == 0


async def test_a_full_batch_is_written_before_the_interval(pg: asyncpg.Pool) -> None:
    sink = EventSink(pg, batch_size=10, interval_s=60)
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.sleep(0.05)  # the loop is now waiting out its 60 s interval
        who = user()
        for i in range(10):
            record(app_with(sink), "cart", user_id=who, product_id=1, sku_id=i + 1)
        found = await wait_rows(pg, "SELECT count(*) FROM events WHERE user_id = $1", who,
                                want=10, timeout_s=3)
        assert found == 10
    finally:
        await sink.close(task)


async def test_close_flushes_what_the_interval_has_not(pg: asyncpg.Pool) -> None:
    sink = EventSink(pg, batch_size=1000, interval_s=60)
    task = asyncio.create_task(sink.run())
    await asyncio.sleep(0.05)
    who = user()
    for i in range(2500):
        sink.add(sink_event(who, i))
    await sink.close(task)
    assert task.done() and len(sink) == 0
    assert await pg.fetchval("SELECT count(*) FROM events WHERE user_id = $1", who) == 2500


def sink_event(who: str, i: int) -> Any:
    return (datetime.now(UTC), "view", who, i + 1, None, None, None)


async def test_the_app_flushes_on_shutdown(fresh_settings: Settings, pg: asyncpg.Pool) -> None:
    client = TestClient(TestServer(create_app(fresh_settings)))
    await client.start_server()
    who = user()
    try:
        for i in range(30):
            record(client.app, "view", user_id=who, product_id=i + 1)
        assert len(client.app[EVENT_SINK]) == 30
    finally:
        await client.close()
    assert await pg.fetchval("SELECT count(*) FROM events WHERE user_id = $1", who) == 30
