"""When PostgreSQL cannot take an audit entry, the request still answers, the failure is
counted and the entry is logged."""

from __future__ import annotations

import logging
import time
import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from audit import middleware
from mall.settings import Settings
from tests.stack import auth


def failures() -> float:
    return REGISTRY.get_sample_value("mall_audit_write_failures_total",
                                     {"kind": "staff_action"}) or 0.0


async def test_a_blocked_audit_table_does_not_block_the_answer(
        client: TestClient, settings: Settings, database_url: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(middleware, "AUDIT_WRITE_TIMEOUT_S", 0.5)
    staff = f"aud-blocked-{uuid.uuid4().hex[:8]}"
    name = f"Blocked {uuid.uuid4().hex[:8]}"
    before = failures()
    locker = await asyncpg.connect(database_url)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="audit.middleware"):
            resp = await client.post("/api/v1/admin/categories", json={"name": name},
                                     headers=auth(settings, staff, "staff"))
        elapsed = time.monotonic() - started
        await transaction.rollback()
    finally:
        await locker.close()
    assert resp.status == 201, await resp.text()
    assert elapsed < 5
    assert failures() == before + 1
    logged = [r.getMessage() for r in caplog.records if "audit entry not written" in r.getMessage()]
    assert len(logged) == 1 and staff in logged[0] and name in logged[0]
    # The next action finds the table free again and is recorded as usual.
    resp = await client.post("/api/v1/admin/categories", json={"name": name + " 2"},
                             headers=auth(settings, staff, "staff"))
    assert resp.status == 201
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        names = [r["n"] for r in await pool.fetch(
            "SELECT details->'body'->>'name' AS n FROM audit_log WHERE actor = $1", staff)]
    assert name + " 2" in names
