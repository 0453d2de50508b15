"""A short, bounded flash-sale burst against a running mall, on loopback.

Creates a product and a live flash sale, fires concurrent purchase requests from more users
than there is stock (each user clicks more than once), waits until the writer has persisted
every accepted order, and prints what happened. Exits non-zero if anything is off.

    python -m bench.burst --url http://127.0.0.1:8080 --stock 100 --users 1000
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import click

from mall.auth import issue_token
from mall.settings import Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: object):  # type: ignore[no-untyped-def]
    async with session.request(method, url, **kw) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json(content_type=None)


async def create_sale(session: aiohttp.ClientSession, base: str, admin: str, stock: int,
                      limit: int) -> int:
    headers = {"Authorization": f"Bearer {admin}"}
    status, product = await _json(
        session, "POST", f"{base}/api/v1/admin/products", headers=headers,
        json={"name": "Demo phone 演示手机", "skus": [{"price": 399900, "stock": stock}]},
    )
    if status != 201:
        raise click.ClickException(f"creating the product answered {status}: {product}")
    now = datetime.now(UTC)
    status, sale = await _json(
        session, "POST", f"{base}/api/v1/admin/flash-sales", headers=headers,
        json={"sku_id": product["skus"][0]["id"], "price": 99900, "stock": stock,
              "per_user_limit": limit, "starts_at": (now - timedelta(seconds=1)).isoformat(),
              "ends_at": (now + timedelta(minutes=30)).isoformat()},
    )
    if status != 201:
        raise click.ClickException(f"creating the flash sale answered {status}: {sale}")
    return int(sale["id"])


async def burst(base: str, sale_id: int, tokens: list[str], clicks: int, concurrency: int,
                deadline_s: float) -> tuple[Counter[str], list[str], list[float], float]:
    jobs = [(t, f"click-{n}") for t in tokens for n in range(clicks)]
    random.shuffle(jobs)
    outcomes: Counter[str] = Counter()
    accepted: list[str] = []
    latencies: list[float] = []
    stop_at = time.monotonic() + deadline_s
    url = f"{base}/api/v1/flash-sales/{sale_id}/orders"

    async def worker(session: aiohttp.ClientSession) -> None:
        while jobs and time.monotonic() < stop_at:
            token, key = jobs.pop()
            started = time.perf_counter()
            try:
                status, body = await _json(
                    session, "POST", url, json={"qty": 1},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcomes[f"error:{type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            code = "accepted" if status == 202 else body.get("error", {}).get("code", status)
            outcomes[str(code)] += 1
            if status == 202:
                accepted.append(body["order_id"])

    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return outcomes, accepted, latencies, time.perf_counter() - started


async def wait_persisted(session: aiohttp.ClientSession, base: str, staff: str,
                         order_ids: list[str], timeout_s: float) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {staff}"}
    pending = set(order_ids)
    started = time.perf_counter()
    while pending and time.perf_counter() - started < timeout_s:
        for order_id in list(pending):
            status, body = await _json(session, "GET", f"{base}/api/v1/orders/{order_id}",
                                       headers=headers)
            if status == 200 and body["status"] != "queued":
                pending.discard(order_id)
        if pending:
            await asyncio.sleep(0.1)
    return len(order_ids) - len(pending), time.perf_counter() - started


async def browse(base: str) -> None:
    """A glance at the catalog, as a storefront would show it."""
    async with aiohttp.ClientSession() as session:
        for query in ("手机", "phone"):
            status, page = await _json(session, "GET", f"{base}/api/v1/products",
                                       params={"q": query, "limit": "3"})
            if status != 200:
                click.echo(f"search {query!r} answered {status}")
                continue
            names = ", ".join(f"{p['name']} (from {p['price_from'] / 100:.2f})"
                              for p in page["items"]) or "nothing"
            click.echo(f"search {query!r:<9} {names}")


async def run(base: str, stock: int, users: int, clicks: int, limit: int, concurrency: int,
              deadline_s: float) -> int:
    secret = Settings.from_env().jwt_secret
    admin = issue_token(secret, "demo-admin", "admin", 3600)
    tokens = [issue_token(secret, f"demo-user-{i}", "customer", 3600) for i in range(users)]
    async with aiohttp.ClientSession() as session:
        sale_id = await create_sale(session, base, admin, stock, limit)
        click.echo(f"flash sale {sale_id}: {stock} units, limit {limit} per user; "
                   f"{users} users x {clicks} clicks, {concurrency} connections")
        outcomes, accepted, latencies, elapsed = await burst(
            base, sale_id, tokens, clicks, concurrency, deadline_s)
        persisted, lag = await wait_persisted(session, base, admin, accepted, 60)
        _, sale = await _json(session, "GET", f"{base}/api/v1/flash-sales/{sale_id}")
    sent = sum(outcomes.values())
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0
    click.echo(f"requests sent   {sent} in {elapsed:.2f}s ({sent / elapsed:.0f} req/s), "
               f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for outcome, count in sorted(outcomes.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {outcome:<16}{count}")
    click.echo(f"accepted        {len(accepted)} orders (stock {stock}, "
               f"remaining {sale['remaining']}, state {sale['state']})")
    click.echo(f"sold out        {outcomes.get('sold_out', 0)} answers")
    click.echo(f"persisted       {persisted} of {len(accepted)} in PostgreSQL "
               f"(all within {lag:.2f}s of the burst's end)")
    await browse(base)
    ok = (len(accepted) == len(set(accepted)) == stock - sale["remaining"] <= stock
          and persisted == len(accepted)
          and not any(k.startswith("error") for k in outcomes))
    click.echo("outcome         " + ("OK: no oversell, every accepted order persisted once"
                                     if ok else "PROBLEM: see the numbers above"))
    return 0 if ok else 1


@click.command()
@click.option("--url", default="http://127.0.0.1:8080", show_default=True)
@click.option("--stock", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--users", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--clicks", default=2, show_default=True, type=click.IntRange(1, 10),
              help="Purchase requests per user, each with its own Idempotency-Key.")
@click.option("--limit", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option("--concurrency", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--max-seconds", default=60.0, show_default=True,
              type=click.FloatRange(1, 600), help="Stop sending after this long.")
def main(url: str, stock: int, users: int, clicks: int, limit: int, concurrency: int,
         max_seconds: float) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise click.BadParameter("the burst only targets loopback addresses", param_hint="--url")
    sys.exit(asyncio.run(run(url.rstrip("/"), stock, users, clicks, limit, concurrency,
                             max_seconds)))


if __name__ == "__main__":
    main()
