"""The continuous drift check: Redis against PostgreSQL, exported as `mall_drift_units`.

Every serving process runs the loop; a Redis lock with expiry lets one of them check per
interval. During a burst Redis and PostgreSQL differ by what is in flight, so only a settled
check (mall/reconcile.py) updates the gauge, and a warning is logged only when drift is found
by two settled checks in a row, whichever processes made them (the last finding lives in Redis).

The gauge uses the multiprocess mode "mostrecent": the checking process changes from one
interval to the next, and "max" would keep a stale high value written by a worker that has not
held the lock since, while "liveall" would show one series per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import asyncpg
import orjson
from aiohttp import web
from prometheus_client import Gauge
from redis.asyncio import Redis

from mall.background import StoppableLoop, stop_task
from mall.reconcile import Reconciler, Report
from mall.resources import PG, REDIS, SETTINGS
from mall.settings import Settings

log = logging.getLogger(__name__)

DRIFT_UNITS = Gauge(
    "mall_drift_units",
    "Units a flash sale's Redis stock offers beyond what PostgreSQL expects (negative: fewer), "
    "from the last settled check; 0 is healthy.",
    ["sale_id"],
    multiprocess_mode="mostrecent",
)
QUIET_S = 1.0
STOP_TIMEOUT_S = 5.0


def lock_key(namespace: str) -> str:
    return f"{namespace}:drift:lock"


def last_finding_key(namespace: str) -> str:
    return f"{namespace}:drift:last"


class DriftCheck(StoppableLoop):
    def __init__(self, pool: asyncpg.Pool, redis: Redis, settings: Settings) -> None:
        super().__init__()
        self._redis = redis
        self._settings = settings
        self._reconciler = Reconciler(pool, redis, settings)
        self._token = os.urandom(8).hex()
        self.interval_s = settings.drift_check_s

    async def step(self) -> None:
        lock_ms = max(int(self.interval_s * 1000), int(QUIET_S * 1000) + 500)
        if not await self._redis.set(lock_key(self._settings.namespace), self._token, nx=True,
                                     px=lock_ms):
            return
        await self.check_once()

    async def check_once(self) -> Report:
        report = await self._reconciler.check(quiet_s=QUIET_S)
        if not report.settled:
            log.debug("drift check skipped: not settled (%s)",
                      "; ".join(report.not_settled_because))
            return report
        for sale in report.sales:
            if sale.state == "live" or sale.problems:
                DRIFT_UNITS.labels(str(sale.sale_id)).set(sale.drift_units)
        await self._warn_if_persisting(report)
        return report

    async def _warn_if_persisting(self, report: Report) -> None:
        findings = {f"sale:{s.sale_id}": s.problems for s in report.sales if s.problems}
        findings.update({f"sku:{k.sku_id}": k.problems for k in report.skus if k.problems})
        findings.update({f"coupon_template:{c.template_id}": c.problems
                         for c in report.coupons if c.problems})
        key = last_finding_key(self._settings.namespace)
        previous_raw = await self._redis.get(key)
        previous = orjson.loads(previous_raw) if previous_raw else {}
        ttl_ms = int(self.interval_s * 3000) + 5000
        await self._redis.set(key, orjson.dumps(findings), px=ttl_ms)
        for what, problems in findings.items():
            if previous.get(what) == problems:
                log.warning("drift between Redis and PostgreSQL persists for %s: %s "
                            "(run `mall reconcile` to see it, `--repair` to fix it)",
                            what, "; ".join(problems))


async def drift_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the drift check in this serving process (one process checks per interval)."""
    check = DriftCheck(app[PG], app[REDIS], app[SETTINGS])
    task = asyncio.create_task(check.run())
    yield
    check.stop()
    await stop_task(task, STOP_TIMEOUT_S)
