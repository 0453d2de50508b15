"""The naive peer a typical shop runs: stock decremented by a PostgreSQL UPDATE per purchase.

    UPDATE naive_stock SET stock = stock - 1 WHERE sku_id = $1 AND stock > 0
    INSERT INTO naive_orders ...                    -- in the same transaction

behind an aiohttp + asyncpg handler with the same JWT check and body parsing as the mall, so the
benchmark compares the designs, not the frameworks. Run by bench/peak.py; not part of the mall.

    python -m bench.naive_peer --port 8090 --workers 1
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
import click
import msgspec
import uvloop
from aiohttp import web

from mall.auth import TokenVerifier
from mall.errors import ApiError, decode_body, error_middleware, json_response
from mall.settings import Settings

POOL = web.AppKey("pool", asyncpg.Pool)
VERIFIER = web.AppKey("verifier", TokenVerifier)

SCHEMA = """
CREATE TABLE IF NOT EXISTS naive_stock (sku_id bigint PRIMARY KEY, stock bigint NOT NULL
    CHECK (stock >= 0));
CREATE TABLE IF NOT EXISTS naive_orders (id bigserial PRIMARY KEY, sku_id bigint NOT NULL,
    user_id text NOT NULL, qty integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"""
TAKE = "UPDATE naive_stock SET stock = stock - $2 WHERE sku_id = $1 AND stock >= $2 RETURNING stock"
INSERT = "INSERT INTO naive_orders (sku_id, user_id, qty) VALUES ($1, $2, $3) RETURNING id"


class Purchase(msgspec.Struct, forbid_unknown_fields=True):
    qty: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1


async def buy(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    sku_id = int(request.match_info["sku_id"])
    body = decode_body(await request.read(), Purchase)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        left = await conn.fetchval(TAKE, sku_id, body.qty)
        if left is None:
            raise ApiError(409, "sold_out", "sold out")
        order_id = await conn.fetchval(INSERT, sku_id, principal.user_id, body.qty)
    return json_response({"order_id": order_id, "status": "created"}, status=201)


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = Settings.from_env()
    app[POOL] = await asyncpg.create_pool(settings.database_url, min_size=4,
                                          max_size=settings.pg_pool_max)
    yield
    await app[POOL].close()


async def reset(database_url: str, sku_id: int, stock: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(SCHEMA)
        await conn.execute("DELETE FROM naive_orders WHERE sku_id = $1", sku_id)
        await conn.execute(
            "INSERT INTO naive_stock VALUES ($1, $2) ON CONFLICT (sku_id) DO UPDATE SET stock = $2",
            sku_id, stock)
    finally:
        await conn.close()


def create_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[VERIFIER] = TokenVerifier(Settings.from_env().jwt_secret)
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/buy/{sku_id:\\d+}", buy)
    app.router.add_get("/livez", livez)
    return app


@click.command()
@click.option("--port", default=8090, type=int)
@click.option("--workers", default=1, type=click.IntRange(1, 16))
@click.option("--reuse-port", is_flag=True, hidden=True)
def main(port: int, workers: int, reuse_port: bool) -> None:
    if workers > 1:
        cmd = [sys.executable, "-m", "bench.naive_peer", "--port", str(port), "--reuse-port"]
        children = [subprocess.Popen(cmd) for _ in range(workers)]
        signal.signal(signal.SIGTERM, lambda *_: [c.terminate() for c in children])
        for child in children:
            child.wait()
        return
    uvloop.install()
    web.run_app(create_app(), host="127.0.0.1", port=port, reuse_port=reuse_port or None,
                access_log=None, print=None)


if __name__ == "__main__":
    os.environ.setdefault("MALL_LOG_LEVEL", "WARNING")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    main()
