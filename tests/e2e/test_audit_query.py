"""GET /api/v1/admin/audit: filters, keyset pages newest first, CSV, and refusals."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.stack import auth

AUDIT = "/api/v1/admin/audit"


async def audit(client: TestClient, settings: Settings, expect: int = 200,
                **params: Any) -> Any:
    resp = await client.get(AUDIT, params={k: str(v) for k, v in params.items()},
                            headers=auth(settings, "aud-auditor", "admin"))
    assert resp.status == expect, await resp.text()
    return await resp.json()


async def make_history(client: TestClient, settings: Settings) -> tuple[str, list[int]]:
    """A staff member of its own creates three products and fails one action."""
    staff = f"aud-q-{uuid.uuid4().hex[:8]}"
    product_ids = []
    for i in range(3):
        resp = await client.post("/api/v1/admin/products", headers=auth(settings, staff, "staff"),
                                 json={"name": f"Query lamp {i}",
                                       "skus": [{"price": 100, "stock": 1}]})
        assert resp.status == 201
        product_ids.append((await resp.json())["id"])
    resp = await client.patch(f"/api/v1/admin/products/{product_ids[0]}",
                              headers=auth(settings, staff, "staff"), json={"name": ""})
    assert resp.status == 422
    return staff, product_ids


async def test_filters_and_pages_newest_first(client: TestClient, settings: Settings) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    staff, product_ids = await make_history(client, settings)
    everything = (await audit(client, settings, actor=staff))["items"]
    assert [e["status"] for e in everything] == [422, 201, 201, 201]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"actor": staff, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await audit(client, settings, **params)
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything]

    about_first = (await audit(client, settings, target=product_ids[0]))["items"]
    assert [e["status"] for e in about_first] == [422]
    assert about_first[0]["target"] == {"product_id": str(product_ids[0])}
    failed = (await audit(client, settings, actor=staff, status=422))["items"]
    assert [e["id"] for e in failed] == [everything[0]["id"]]
    staff_only = (await audit(client, settings, actor=staff, kind="staff_action"))["items"]
    assert len(staff_only) == 4
    assert (await audit(client, settings, actor=staff, kind="login"))["items"] == []
    window = (await audit(client, settings, actor=staff, **{"from": started.isoformat()},
                          to=(datetime.now(UTC) + timedelta(seconds=5)).isoformat()))["items"]
    assert len(window) == 4
    before = (await audit(client, settings, actor=staff, to=started.isoformat()))["items"]
    assert before == []


async def test_csv_export(client: TestClient, settings: Settings) -> None:
    staff, _ = await make_history(client, settings)
    resp = await client.get(AUDIT, params={"actor": staff, "format": "csv"},
                            headers=auth(settings, "aud-auditor", "staff"))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["status"] for r in rows] == ["422", "201", "201", "201"]
    assert {r["actor"] for r in rows} == {staff}
    assert rows[0]["route"] == "/api/v1/admin/products/{product_id}"


async def test_bad_filters_are_422_and_customers_403(client: TestClient, settings: Settings,
                                                      pg: asyncpg.Pool) -> None:
    for params in ({"kind": "everything"}, {"from": "yesterday"},
                   {"to": "2024-01-01T00:00:00"}, {"status": "abc"}, {"status": "99"},
                   {"cursor": "-1"}, {"cursor": "x"}, {"limit": "0"}, {"limit": "201"},
                   {"format": "xml"}, {"actor_id": "someone"}, {"actor": ""},
                   {"from": "2025-01-02T00:00:00+00:00", "to": "2025-01-01T00:00:00+00:00"},
                   {"format": "csv", "limit": "5"}):
        body = await audit(client, settings, 422, **params)
        assert body["error"]["code"] == "invalid_request", params
    resp = await client.get(AUDIT, headers=auth(settings, "aud-nosy"))
    assert resp.status == 403
    # ...and that denial is itself in the log.
    denied = await pg.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'aud-nosy'"
                               " AND kind = 'permission_denied' AND route = $1", AUDIT)
    assert denied >= 1
    resp = await client.get(AUDIT)
    assert resp.status == 401
