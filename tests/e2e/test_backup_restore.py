"""`mall backup` and `mall restore` with real pg_dump, pg_restore and processes: every order
comes back, Redis is rebuilt from the restored database, and buying works again."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from redis.asyncio import Redis

from mall.keys import Keys
from mall.migrate import drop_database
from mall.settings import Settings
from tests.e2e.burst import Attempt, fire
from tests.e2e.test_reconcile import create_sale, delete_namespace_keys, persisted
from tests.stack import ROOT, Stack, auth, request_json, unique_namespace

STOCK = 40


async def mall(settings: Settings, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mall.cli", *args, env=settings.process_env(), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_backup_then_restore_into_an_empty_database(
        own_database_settings: Settings, redis: Redis, tmp_path: Path) -> None:
    settings = own_database_settings
    target_url = settings.database_url.rsplit("/", 1)[0] + "/" + unique_namespace("mall_rst_")
    restored = settings.with_(database_url=target_url)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    stack = Stack.create(settings, "backup")
    try:
        await stack.start()
        sale_id, _ = await create_sale(stack.url, settings, STOCK, 1)
        burst = await fire(stack.url, settings, sale_id,
                           [Attempt(f"k{u}", None) for u in range(25)], concurrency=25)
        accepted = burst.accepted()
        assert len(accepted) == 25
        assert len(await persisted(pg, sale_id, 25)) == 25
        # one order moves on in its lifecycle, so the manifest has two statuses
        order_id, user = next(iter(accepted.items()))
        async with aiohttp.ClientSession() as session:
            status, body = await request_json(
                session, "POST", f"{stack.url}/api/v1/orders/{order_id}/cancel",
                headers=auth(settings, user))
        assert status == 200, body

        code, out = await mall(settings, "backup", "--out", str(tmp_path / "b"))
        assert code == 0, out
        manifest = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
        assert manifest["orders_by_status"] == {"cancelled": 1, "pending_payment": 24}
        assert manifest["schema_version"] >= 15
        stack.stop()

        # disaster: the namespace's Redis state is gone; restore into a new database
        await delete_namespace_keys(redis, settings.namespace)
        code, out = await mall(settings, "restore", "--from", str(tmp_path / "b"),
                               "--database-url", target_url)
        assert code == 0, out
        async with asyncpg.create_pool(target_url, min_size=1, max_size=2) as new_pg:
            rows = await new_pg.fetch("SELECT order_id, user_id, status FROM orders")
            assert {r["order_id"]: r["user_id"] for r in rows} == accepted
            assert sum(r["status"] == "cancelled" for r in rows) == 1
        k = Keys(settings.namespace).sale(sale_id)
        # 24 held, 1 cancelled and given back: 16 left, 24 buyers
        assert int(await redis.get(k.stock)) == STOCK - 24
        assert await redis.hlen(k.buyers) == 24

        # a non-empty database is refused without --force
        code, out = await mall(settings, "restore", "--from", str(tmp_path / "b"),
                               "--database-url", target_url)
        assert code != 0 and "not empty" in out, out

        # the restored deployment sells: a buyer over the limit is refused, a new one buys
        new_stack = Stack.create(restored, "restored")
        try:
            await new_stack.start()
            again = await fire(new_stack.url, restored, sale_id,
                               [Attempt(user, None), Attempt("new1", None)], concurrency=1)
            statuses = {a.user: a.statuses[-1] for a in again.attempts}
            assert statuses["new1"] == 202 and statuses[user] == 202, statuses
            holder = next(u for u in accepted.values() if u != user)
            refused = await fire(new_stack.url, restored, sale_id, [Attempt(holder, None)],
                                 concurrency=1)
            assert refused.attempts[0].statuses[-1] == 409
            async with asyncpg.create_pool(target_url, min_size=1, max_size=2) as new_pg:
                rows = await persisted(new_pg, sale_id, 27)
                assert {r["order_id"] for r in rows} == set(accepted) | set(again.accepted())
        finally:
            new_stack.stop()
    finally:
        stack.stop()
        await pg.close()
        await drop_database(target_url)
