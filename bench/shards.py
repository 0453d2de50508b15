"""Admission throughput of one hot flash sale split into K stock shards, on a local
three-master Redis Cluster (loopback, bounded in time).

For each K, a sale with more stock than the run can sell is loaded into the cluster, and P
client processes each run the admission service itself (cluster script pipe, home shard per
buyer, every request from a new buyer) with C purchases in flight for S seconds. Reported:
accepted admissions per second, and the CPU time each cluster master spent (INFO cpu), which
shows how the load of one sale spreads over the masters as K grows.

    python -m bench.shards --shards 1,2,4 --seconds 8 --procs 2 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import uvloop
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from bench.report import RESULTS_MD, machine
from mall.cluster_pipe import ClusterScriptPipe
from mall.keys import Keys
from mall.lua import read_script
from mall.settings import Settings
from seckill.admission import AdmissionService, PurchaseRequest
from seckill.campaigns import Campaigns
from seckill.shards import ShardedStock
from seckill.soldout import SoldOutFlags
from tests.cluster.local_cluster import local_cluster

STOCK = 5_000_000


def _settings(url: str, namespace: str) -> Settings:
    return Settings.from_env().with_(namespace=namespace, redis_url=url,
                                     rate_limit_user=10**9, rate_limit_ip=10**9,
                                     rate_limit_sale=10**9)


async def _drive(url: str, namespace: str, sale_id: int, seconds: float, concurrency: int,
                 tag: str) -> dict[str, int]:
    settings = _settings(url, namespace)
    keys = Keys(namespace)
    cluster = RedisCluster.from_url(url, max_connections=concurrency)
    await cluster.initialize()
    shards = ShardedStock(cluster, keys)
    pipe = ClusterScriptPipe(url, read_script("admit"))
    flags = SoldOutFlags(cluster, keys, shards)
    service = AdmissionService(pipe, keys, flags, settings, shards)
    counts: Counter[str] = Counter()
    await service.admit(PurchaseRequest(sale_id, f"{tag}-warm", 1, None))
    deadline = time.monotonic() + seconds
    serial = 0

    async def buyer() -> None:
        nonlocal serial
        while time.monotonic() < deadline:
            serial += 1
            result = await service.admit(PurchaseRequest(sale_id, f"{tag}-{serial}", 1, None))
            counts[result.outcome.name.lower()] += 1

    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    await flags.aclose()
    await pipe.aclose()
    await cluster.aclose()
    return dict(counts)


def _worker(args: tuple[str, str, int, float, int, str]) -> dict[str, int]:
    return uvloop.run(_drive(*args))


async def _node_cpu(ports: list[int]) -> dict[int, float]:
    cpu = {}
    for port in ports:
        node = Redis(host="127.0.0.1", port=port)
        info = await node.info("cpu")
        cpu[port] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        await node.aclose()
    return cpu


async def _load_sale(url: str, namespace: str, shards: int) -> int:
    """Load a sale whose K shards sit on min(K, masters) different masters; its id."""
    cluster = RedisCluster.from_url(url)
    await cluster.initialize()
    keys = Keys(namespace)
    masters = len(cluster.get_primaries())
    sale_id = next(s for s in range(1, 100_000)
                   if len({cluster.get_node_from_key(k.meta).name
                           for k in keys.sale_shards(s, shards)}) == min(shards, masters))
    now = datetime.now(UTC)
    await Campaigns(None, cluster, keys, ShardedStock(cluster, keys)).load_into_redis(  # type: ignore[arg-type]
        sale_id, 1, 100, STOCK, 1, now - timedelta(seconds=5), now + timedelta(hours=1),
        shards=shards)
    await cluster.aclose()
    return sale_id


def run_one(ports: list[int], shards: int, seconds: float, procs: int,
            concurrency: int) -> dict[str, Any]:
    url = f"redis://127.0.0.1:{ports[0]}/0"
    namespace = f"bench-shards-{shards}-{int(time.time())}"
    sale_id = asyncio.run(_load_sale(url, namespace, shards))
    before = asyncio.run(_node_cpu(ports))
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_worker, [(url, namespace, sale_id, seconds, concurrency, f"p{i}")
                                   for i in range(procs)])
    elapsed = time.monotonic() - started
    after = asyncio.run(_node_cpu(ports))
    counts: Counter[str] = Counter()
    for part in parts:
        counts.update(part)
    node_cpu = sorted((after[p] - before[p] for p in ports), reverse=True)
    return {"shards": shards, "accepted": counts.get("accepted", 0),
            "other": sum(v for k, v in counts.items() if k != "accepted"),
            "rps": counts.get("accepted", 0) / seconds, "elapsed": elapsed,
            "node_cpu": node_cpu}


def markdown(rows: list[dict[str, Any]], command: str, seconds: float, procs: int,
             concurrency: int) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {now}: hot-SKU shards on a local Redis Cluster", "",
             f"Machine: {machine()}. Command: `{command}`. Three masters on loopback, "
             f"{procs} client processes running the admission service with {concurrency} "
             f"purchases in flight each, {seconds:g} s per K, every purchase from a new buyer, "
             "one sale with more stock than the run sells, its id chosen so that its K shards "
             "sit on min(K, 3) masters.", "",
             "| K shards | accepted/s | refused | CPU s of each master (busiest first) |"
             " busiest master's share | busiest master's CPU per admission |"
             " sale's ceiling at 100% of that master |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        total = sum(r["node_cpu"]) or 1.0
        cpu = " / ".join(f"{c:.2f}" for c in r["node_cpu"])
        per_admission_us = r["node_cpu"][0] / max(r["accepted"], 1) * 1e6
        lines.append(f"| {r['shards']} | {r['rps']:,.0f} | {r['other']} | {cpu} |"
                     f" {r['node_cpu'][0] / total:.0%} | {per_admission_us:.0f} µs |"
                     f" {1e6 / per_admission_us:,.0f} /s |")
    lines += ["", "The client processes and the three masters share the machine's cores: "
              "accepted/s is the client's limit here, not Redis's. The last column is what the "
              "busiest master could take if it had a core of its own, the figure that sharding "
              "moves."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    a = parser.parse_args()
    if not (0 < a.seconds <= 60 and 1 <= a.procs <= 8 and 1 <= a.concurrency <= 512):
        parser.error("bounded runs only: --seconds <= 60, --procs <= 8, --concurrency <= 512")
    ks = [int(k) for k in a.shards.split(",")]
    rows = []
    with local_cluster() as ports:
        for k in ks:
            rows.append(run_one(ports, k, a.seconds, a.procs, a.concurrency))
            print(rows[-1], flush=True)
    command = ("make bench-shards SHARDS_ARGS=\"--shards " + a.shards + f" --seconds {a.seconds:g}"
               f" --procs {a.procs} --concurrency {a.concurrency}\"")
    text = markdown(rows, command, a.seconds, a.procs, a.concurrency)
    print(text)
    if not a.no_record:
        with RESULTS_MD.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
