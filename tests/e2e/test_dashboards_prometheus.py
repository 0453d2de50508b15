"""A real Prometheus scrapes `mall serve --workers 2` and `mall writer` during a short burst;
every query of every Grafana panel must then return data."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.settings import Settings
from tests.e2e.burst import Attempt, fire, settle
from tests.e2e.test_concurrency import create_sale_http
from tests.stack import ARTIFACTS, Stack, free_port

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(panel["title"], t["expr"]) for t in panel["targets"]]
    return queries


def start_prometheus(tmp: Path, targets: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing (Debian package 'prometheus'; make test installs it)"
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: mall\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    log = (ARTIFACTS / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    return proc, port


async def query(session: aiohttp.ClientSession, port: int, expr: str) -> list[object]:
    async with session.get(f"http://127.0.0.1:{port}/api/v1/query",
                           params={"query": expr}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def test_every_panel_query_returns_data(fresh_settings: Settings, pg: asyncpg.Pool,
                                              redis: Redis, tmp_path: Path) -> None:
    settings = fresh_settings.with_(writer_metrics_port=free_port())
    stack = Stack.create(settings, "dashboards", workers=2)
    prometheus = None
    try:
        await stack.start()
        prometheus, port = start_prometheus(tmp_path, [
            f"127.0.0.1:{stack.port}", f"127.0.0.1:{settings.writer_metrics_port}"])
        sale_id = await create_sale_http(stack.url, settings, 150, 1)
        attempts = [Attempt(f"d{u}", None) for u in range(400)]
        await fire(stack.url, settings, sale_id, attempts, concurrency=32)
        await settle(pg, redis, settings, sale_id, 150)
        async with aiohttp.ClientSession() as session:
            # Let Prometheus take a few scrapes after the burst so every rate has two samples.
            deadline = time.monotonic() + 60
            missing: list[str] = []
            while time.monotonic() < deadline:
                await asyncio.sleep(2)
                missing = [f"{title}: {expr}" for title, expr in panel_queries()
                           if not await query(session, port, expr)]
                if not missing:
                    break
        assert not missing, "panel queries without data:\n" + "\n".join(missing)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(10)
        stack.stop()
