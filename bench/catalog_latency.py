"""Latency of search and product detail against a running `mall serve` (loopback only).

    python -m bench.catalog_latency --url http://127.0.0.1:8390 --requests 4000 \\
        --concurrency 16 --json catalog-latency.json

Starts nothing. Collects product ids through the search API, then sends a fixed number of
requests (a mix of searches and detail reads) from `--concurrency` workers and prints
p50/p95/p99 latency and requests per second for each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

SEARCHES: list[dict[str, str]] = [
    {"q": "手机"}, {"q": "显示器"}, {"q": "机"}, {"q": "laptop"}, {"q": "Wireless Mouse"},
    {"q": "keybord"}, {"tag": "sale", "sort": "price_asc"}, {"sort": "newest"},
    {"sort": "sales"}, {"min_price": "1000", "max_price": "50000", "in_stock": "true"},
    {"q": "耳机", "sort": "price_desc"}, {"tag": "热卖", "sort": "newest"},
]


def loopback_only(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if parts.scheme != "http" or not is_loopback:
        raise SystemExit("refusing: --url must be http:// on a loopback address")
    return url.rstrip("/")


async def product_ids(session: aiohttp.ClientSession, base: str, pages: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    for _ in range(pages):
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{base}/api/v1/products", params=params) as resp:
            page = orjson.loads(await resp.read())
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return ids


async def run(base: str, total: int, concurrency: int, detail_share: float,
              seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        ids = await product_ids(s, base, 20)
        if not ids:
            raise SystemExit("no products found: seed the catalog first")
        plan = [("detail", f"{base}/api/v1/products/{rng.choice(ids)}", None)
                if rng.random() < detail_share else
                ("search", f"{base}/api/v1/products", rng.choice(SEARCHES))
                for _ in range(total)]
        timings: dict[str, list[float]] = {"search": [], "detail": []}
        errors = 0
        queue = iter(plan)

        async def worker() -> None:
            nonlocal errors
            for kind, url, params in queue:
                started = time.perf_counter()
                async with s.get(url, params=params) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                timings[kind].append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"requests": total, "concurrency": concurrency, "errors": errors,
            "seconds": round(elapsed, 3), "req_per_s": round(total / elapsed, 1),
            "kinds": {kind: summary(values) for kind, values in timings.items() if values}}


def summary(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"count": len(values), "p50_ms": round(cuts[49] * 1000, 2),
            "p95_ms": round(cuts[94] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL of mall serve (loopback)")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--detail-share", type=float, default=0.5,
                        help="share of requests that read a product detail")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.concurrency <= 1024:
        raise SystemExit("--requests must be 1..1000000 and --concurrency 1..1024")
    result = asyncio.run(run(loopback_only(args.url), args.requests, args.concurrency,
                             args.detail_share, args.seed))
    print(f"{result['requests']} requests, concurrency {result['concurrency']}, "
          f"{result['req_per_s']} req/s, {result['errors']} errors")
    for kind, s in result["kinds"].items():
        print(f"  {kind:7s} n={s['count']:6d} p50={s['p50_ms']} ms p95={s['p95_ms']} ms "
              f"p99={s['p99_ms']} ms")
    if args.json:
        args.json.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
