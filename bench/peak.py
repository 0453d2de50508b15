"""The peak-throughput harness: the floor, flash-sale admission, sold-out traffic and the naive
PostgreSQL peer, measured in one run on the same machine, for 1 and 2 server processes.

After each admission run it checks correctness in PostgreSQL and Redis (no oversell, no user
over the limit, every accepted order persisted exactly once) and reports the accept-to-persist
lag and the writer's drain rate. Loopback only; every load is bounded by --seconds.

    python -m bench.peak --seconds 10 --connections 64 --workers 1,2
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import click
import redis.asyncio as aioredis

from bench.naive_peer import reset as reset_naive
from bench.procs import background, free_port, wait_http
from bench.report import write_reports
from bench.wrk_runner import WrkResult, run_wrk
from mall.auth import issue_token
from mall.keys import Keys
from mall.migrate import drop_database, migrate
from mall.namespace import drop_namespace
from mall.settings import Settings

OUT = Path("bench/out")
ACCEPT_STOCK = 5_000_000
NAIVE_SKU = 1


@dataclass
class Run:
    workers: int
    results: list[WrkResult] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)


async def _http(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    async with aiohttp.ClientSession() as session, session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        data = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url} answered {resp.status}: {data}")
        return data


async def create_sale(base: str, admin: str, stock: int) -> int:
    product = await _http("POST", f"{base}/api/v1/admin/products", admin,
                          {"name": "Bench phone", "skus": [{"price": 100, "stock": stock}]})
    now = datetime.now(UTC)
    sale = await _http("POST", f"{base}/api/v1/admin/flash-sales", admin, {
        "sku_id": product["skus"][0]["id"], "price": 50, "stock": stock, "per_user_limit": 1,
        "starts_at": (now - timedelta(seconds=5)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat()})
    return int(sale["id"])


async def settle(pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, sale_id: int,
                 stock: int, timeout_s: float = 300) -> tuple[int, int, float]:
    """Wait for the writer to persist every accepted unit: (remaining, rows, seconds waited)."""
    started = time.monotonic()
    while True:
        remaining = int(await redis.get(keys.sale(sale_id).stock))
        rows = int(await pool.fetchval("SELECT count(*) FROM orders WHERE sale_id = $1", sale_id))
        if rows == stock - remaining:
            return remaining, rows, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"sale {sale_id} not settled: {rows} rows, {remaining} left")
        await asyncio.sleep(0.1)


CHECK_SQL = """
SELECT (SELECT sold FROM flash_sales WHERE id = $1) AS sold,
       (SELECT stock FROM flash_sales WHERE id = $1) AS stock,
       (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM orders WHERE sale_id = $1
                                         GROUP BY user_id) u) AS max_per_user,
       (SELECT count(*) FROM orders WHERE sale_id = $1) AS rows,
       (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY persisted_at - created_at)
          FROM orders WHERE sale_id = $1) AS lag_p50,
       (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY persisted_at - created_at)
          FROM orders WHERE sale_id = $1) AS lag_p99
"""


DRAIN_SQL = """
SELECT count(*), extract(epoch FROM max(persisted_at) - min(persisted_at))::float8
FROM orders WHERE sale_id = $1
"""


async def check_sale(pool: asyncpg.Pool, sale_id: int, accepted_2xx: int, remaining: int
                     ) -> dict[str, Any]:
    row = await pool.fetchrow(CHECK_SQL, sale_id)
    checks = {
        "accepted_2xx": accepted_2xx, "rows": row["rows"], "sold": row["sold"],
        "stock": row["stock"], "remaining": remaining,
        "max_orders_per_user": row["max_per_user"],
        "lag_p50_s": row["lag_p50"].total_seconds() if row["lag_p50"] else 0.0,
        "lag_p99_s": row["lag_p99"].total_seconds() if row["lag_p99"] else 0.0,
    }
    checks["ok"] = (
        row["sold"] == row["rows"] == row["stock"] - remaining
        and row["rows"] >= accepted_2xx  # 202s whose answer wrk timed out are still orders
        and row["max_per_user"] <= 1
    )
    return checks


async def measure(settings: Settings, workers: int, seconds: float, connections: int,
                  tokens: Path) -> Run:
    run = Run(workers)
    env = settings.process_env(MALL_LOG_LEVEL="WARNING")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin = issue_token(settings.jwt_secret, "bench-admin", "admin", 7200)
    keys = Keys(settings.namespace)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    redis = aioredis.Redis.from_url(settings.redis_url)
    serve_args = ["mall.cli", "serve", "--port", str(port), "--workers", str(workers)]
    try:
        with background(serve_args, env, OUT / "serve.log"):
            wait_http(f"{base}/readyz")
            with background(["mall.cli", "writer"], env, OUT / "writer.log"):
                sale = await create_sale(base, admin, ACCEPT_STOCK)
                soldout = await create_sale(base, admin, 1)
                await _http("POST", f"{base}/api/v1/flash-sales/{soldout}/orders", admin,
                            {"qty": 1})
                run.results.append(run_wrk(f"{base}/livez", "floor", workers, seconds,
                                           connections))
                accept = run_wrk(base, "admission", workers, seconds, connections,
                                 f"/api/v1/flash-sales/{sale}/orders", tokens)
                run.results.append(accept)
                remaining, _, waited = await settle(pool, redis, keys, sale, ACCEPT_STOCK)
                run.checks = await check_sale(pool, sale, accept.requests - accept.non_2xx,
                                              remaining)
                run.checks["settled_after_s"] = waited
                run.results.append(run_wrk(base, "sold_out", workers, seconds, connections,
                                           f"/api/v1/flash-sales/{soldout}/orders", tokens))
            # Writer capacity: orders pile up in the queue with the writer stopped, then drain.
            backlog_sale = await create_sale(base, admin, ACCEPT_STOCK)
            piled = run_wrk(base, "admission_writer_stopped", workers, seconds, connections,
                            f"/api/v1/flash-sales/{backlog_sale}/orders", tokens)
            await asyncio.sleep(1)  # let the relay hand the last orders to RabbitMQ
            with background(["mall.cli", "writer"], env, OUT / "writer.log"):
                await settle(pool, redis, keys, backlog_sale, ACCEPT_STOCK)
            # From the first commit to the last, so the writer's start-up is not counted.
            rows, spread = await pool.fetchrow(DRAIN_SQL, backlog_sale)
            run.checks["drain_rows"] = rows
            run.checks["drain_rate"] = rows / spread if spread else 0.0
            run.checks["drain_vs_accept"] = run.checks["drain_rate"] / max(piled.rps, 1.0)
        naive_port = free_port()
        await reset_naive(settings.database_url, NAIVE_SKU, ACCEPT_STOCK)
        with background(["bench.naive_peer", "--port", str(naive_port), "--workers",
                         str(workers)], env, OUT / "naive.log"):
            wait_http(f"http://127.0.0.1:{naive_port}/livez")
            run.results.append(run_wrk(f"http://127.0.0.1:{naive_port}", "naive_pg", workers,
                                       seconds, connections, f"/buy/{NAIVE_SKU}", tokens))
    finally:
        await pool.close()
        await redis.aclose()
        await drop_namespace(settings)
    return run


def issue_tokens(settings: Settings, count: int) -> Path:
    path = OUT / "tokens.txt"
    OUT.mkdir(parents=True, exist_ok=True)
    lines = (issue_token(settings.jwt_secret, f"b{i}", "customer", 7200) for i in range(count))
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_settings() -> Settings:
    base = Settings.from_env()
    url = base.database_url.rsplit("/", 1)[0] + "/mall_bench"
    # Bench orders are never paid: a deadline inside the run would have the sweeper cancel
    # them under the load being measured.
    # wrk is one client IP on loopback: the per-IP limit would measure the limiter instead.
    return base.with_(database_url=url, namespace=f"bench_{int(time.time())}",
                      writer_metrics_port=0, payment_timeout_s=7 * 86_400,
                      rate_limit_ip=10_000_000)


@click.command()
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(1, 120))
@click.option("--connections", default=64, show_default=True, type=click.IntRange(1, 1024))
@click.option("--workers", "workers_list", default="1,2", show_default=True)
@click.option("--users", default=100_000, show_default=True, type=click.IntRange(1000, 500_000),
              help="Distinct buyers (tokens) the admission runs rotate through.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Append the figures to bench/RESULTS.md.")
def main(seconds: float, connections: int, workers_list: str, users: int, record: bool) -> None:
    settings = bench_settings()
    # A fresh database each run, so earlier runs' orders weigh on nothing.
    asyncio.run(drop_database(settings.database_url))
    asyncio.run(migrate(settings.database_url))
    tokens = issue_tokens(settings, users)
    runs = []
    for workers in (int(w) for w in workers_list.split(",")):
        click.echo(f"measuring with {workers} server process(es) ...")
        runs.append(asyncio.run(measure(settings, workers, seconds, connections, tokens)))
    command = "python -m bench.peak " + " ".join(sys.argv[1:])
    summary = write_reports(runs, OUT, command, seconds, connections, record)
    click.echo(summary)
    if not all(r.checks.get("ok") for r in runs):
        click.echo("CORRECTNESS CHECK FAILED", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
