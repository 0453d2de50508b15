"""A flash sale on private services, a paced burst of retrying clients, and the checks after.

`FaultRun` starts Redis, PostgreSQL and RabbitMQ of its own, migrates the database, runs
`mall serve` and `mall writer` against them and opens a live sale. A test (or the benchmark)
then runs `burst()` while it injects faults with `fault()`, and `verify()` measures what every
202 became: persisted, lost or duplicated, with oversell, per-user limit and drift checks and a
recovery time per fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.keys import Keys
from mall.migrate import migrate
from mall.settings import Settings
from tests.e2e.test_concurrency import create_sale_http
from tests.faults.services import PrivateServices, private_services
from tests.stack import ROOT, Stack, request_json, token

PER_USER_LIMIT = 1
# Tuning of test runs: fast takeover of a dead relay's entries, short writer linger, and rate
# limits out of the way (every client here is one loopback address).
FAULT_TUNING = dict(
    relay_claim_idle_ms=1000,
    writer_linger_ms=5,
    writer_metrics_port=0,
    writer_max_attempts=3,
    soldout_refresh_s=0.2,
    rate_limit_ip=10_000_000,
    rate_limit_user=10_000,
    rate_limit_sale=10_000_000,
)


@dataclass
class Click:
    user: str
    key: str
    due: float  # seconds after the burst starts
    statuses: list[int] = field(default_factory=list)
    order_id: str | None = None
    answered_at: float | None = None  # wall time of the 202


@dataclass
class Fault:
    name: str
    started: float  # wall time
    ended: float | None = None


@dataclass
class FaultReport:
    scenario: str
    sent: int
    accepted: int
    persisted: int
    lost: int
    duplicated: int
    over_limit: int
    oversold: int
    drift: int
    unanswered: int  # orders persisted whose 202 never reached a client that had given up
    recovery_s: float  # worst over the faults: fault end -> last earlier order persisted
    accepting_s: float  # worst over the faults: fault end -> first 202 after it
    faults: list[str]
    wall_s: float
    answers: dict[int, int]

    HEADER = ("scenario", "sent", "accepted", "persisted", "lost", "dup", "over_limit",
              "oversold", "drift", "recovery_s", "accepting_s", "wall_s")

    def row(self) -> tuple[str, ...]:
        return (self.scenario, str(self.sent), str(self.accepted), str(self.persisted),
                str(self.lost), str(self.duplicated), str(self.over_limit), str(self.oversold),
                str(self.drift), f"{self.recovery_s:.2f}", f"{self.accepting_s:.2f}",
                f"{self.wall_s:.1f}")

    def line(self) -> str:
        cells = [f"{h}={v}" for h, v in zip(self.HEADER, self.row(), strict=True)]
        return " ".join(cells) + f" answers={self.answers} faults={self.faults}"


def make_clicks(users: int, duration_s: float, rng: random.Random) -> list[Click]:
    """One click per user with its own key, and a second click (another key) from every
    tenth user, which the per-user limit must refuse; spread evenly over the duration."""
    pairs = [(f"u{u}", f"u{u}-a") for u in range(users)]
    pairs += [(f"u{u}", f"u{u}-b") for u in range(0, users, 10)]
    rng.shuffle(pairs)
    step = duration_s / max(1, len(pairs))
    return [Click(user, key, i * step) for i, (user, key) in enumerate(pairs)]


class FaultRun:
    def __init__(self, name: str, *, stock: int, users: int, duration_s: float, seed: int = 7,
                 workers: int = 2, appendfsync: str = "always", concurrency: int = 48) -> None:
        self.name = name
        self.stock = stock
        self.users = users
        self.duration_s = duration_s
        self.rng = random.Random(seed)
        self.workers = workers
        self.appendfsync = appendfsync
        self.concurrency = concurrency
        self.faults: list[Fault] = []
        self.clicks: list[Click] = []
        self._exit = contextlib.AsyncExitStack()
        self.services: PrivateServices
        self.settings: Settings
        self.stack: Stack
        self.sale_id: int
        self.pg: asyncpg.Pool
        self.redis: Redis
        self.started_at = time.monotonic()
        self.burst_started = self.started_at

    async def __aenter__(self) -> FaultRun:
        try:
            self.services = self._exit.enter_context(
                private_services(self.name, appendfsync=self.appendfsync))
            svc = self.services
            await migrate(svc.pg.url())
            self.settings = Settings.from_env().with_(
                database_url=svc.pg.url(), redis_url=svc.redis.url, amqp_url=svc.rabbit.url,
                namespace="fault", **FAULT_TUNING)
            self.stack = Stack.create(self.settings, f"faults-{self.name}", self.workers)
            self._exit.callback(self.stack.stop)
            await self.stack.start()
            self.sale_id = await create_sale_http(self.stack.url, self.settings, self.stock,
                                                  PER_USER_LIMIT)
            self.pg = await asyncpg.create_pool(svc.pg.url(), min_size=1, max_size=2)
            self._exit.push_async_callback(self.pg.close)
            self.redis = Redis.from_url(svc.redis.url)
            self._exit.push_async_callback(self.redis.aclose)
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.namespace)

    # --- faults ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def fault(self, name: str) -> AsyncIterator[Fault]:
        fault = Fault(name, time.time())
        self.faults.append(fault)
        try:
            yield fault
        finally:
            if fault.ended is None:
                fault.ended = time.time()

    def worker_pids(self) -> list[int]:
        assert self.stack.server.proc is not None
        pid = self.stack.server.proc.pid
        try:
            text = open(f"/proc/{pid}/task/{pid}/children").read()  # noqa: ASYNC230
        except OSError:
            return []
        return [int(p) for p in text.split()]

    async def kill_worker(self) -> None:
        """kill -9 one serving worker (API and relay); the supervisor starts another."""
        async with self.fault("kill -9 worker"):
            before = self.worker_pids()
            victim = self.rng.choice(before)
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                now = self.worker_pids()
                if victim not in now and len(now) == len(before):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the supervisor did not replace worker {victim}")

    async def kill_serve(self) -> None:
        async with self.fault("kill -9 serve"):
            self.stack.server.restart()
            await self.stack.wait_ready()

    async def kill_writer(self) -> None:
        async with self.fault("kill -9 writer"):
            self.stack.writer.restart()

    async def restart_rabbit(self, down_s: float = 1.0) -> None:
        async with self.fault("kill -9 RabbitMQ"):
            self.services.rabbit.kill9()
            await asyncio.sleep(down_s)
            await asyncio.to_thread(self.services.rabbit.start)

    async def stop_postgres(self, down_s: float = 10.0) -> None:
        async with self.fault(f"PostgreSQL down {down_s:.0f}s"):
            await asyncio.to_thread(self.services.pg.stop, "immediate")
            await asyncio.sleep(down_s)
            await asyncio.to_thread(self.services.pg.start)

    async def restart_redis(self, kill: bool = True) -> None:
        how = "kill -9" if kill else "restart"
        async with self.fault(f"{how} Redis (appendfsync {self.appendfsync})"):
            await asyncio.to_thread(self.services.restart_redis, kill)

    async def lose_redis(self) -> float:
        """Redis dies and comes back empty; `mall reconcile --repair` rebuilds it. The fault
        ends when Redis is back (empty), so the time to accept again includes the repair.
        Returns how long the repair command ran (it waits for a settled system)."""
        async with self.fault("lose Redis, reconcile --repair"):
            await asyncio.to_thread(self.services.redis.kill9)
            self.services.redis.wipe()
            await asyncio.to_thread(self.services.redis.start)
        started = time.monotonic()
        await self.reconcile_repair()
        return time.monotonic() - started

    async def reconcile_repair(self, timeout_s: float = 30) -> str:
        """Run the repair once the writer drained what RabbitMQ held (exit 3: not settled)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "mall.cli", "reconcile", "--repair"],
                env=self.settings.process_env(), cwd=ROOT, capture_output=True, text=True,
                timeout=60)
            if done.returncode in (0, 1):
                return done.stdout
            if done.returncode != 3 or time.monotonic() > deadline:
                raise AssertionError(f"reconcile --repair exited {done.returncode}:\n"
                                     f"{done.stdout}{done.stderr}")
            await asyncio.sleep(0.5)

    # --- load -----------------------------------------------------------------------------

    async def burst(self, grace_s: float = 40) -> list[Click]:
        """Send every click at its time; retry connection errors, 5xx and 429 with the same
        Idempotency-Key until `grace_s` after the last planned click."""
        self.clicks = make_clicks(self.users, self.duration_s, self.rng)
        tokens = {c.user: token(self.settings, c.user) for c in self.clicks}
        url = f"{self.stack.url}/api/v1/flash-sales/{self.sale_id}/orders"
        started = time.monotonic()
        give_up = started + self.duration_s + grace_s
        gate = asyncio.Semaphore(self.concurrency)
        jitter = random.Random(self.rng.random())

        async def one(session: aiohttp.ClientSession, click: Click) -> None:
            await asyncio.sleep(max(0.0, started + click.due - time.monotonic()))
            headers = {"Authorization": f"Bearer {tokens[click.user]}",
                       "Idempotency-Key": click.key}
            while time.monotonic() < give_up:
                async with gate:
                    try:
                        status, body = await request_json(session, "POST", url,
                                                           json={"qty": 1}, headers=headers)
                    except (aiohttp.ClientError, TimeoutError):
                        status, body = -1, None
                click.statuses.append(status)
                if status == 202:
                    click.order_id = body["order_id"]
                    click.answered_at = time.time()
                if 0 < status < 500 and status != 429:
                    return
                await asyncio.sleep(jitter.uniform(0.05, 0.3))

        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(one(session, c) for c in self.clicks))
        return self.clicks

    async def at(self, fraction: float) -> None:
        """Sleep until this fraction of the burst's planned duration has passed."""
        await asyncio.sleep(max(0.0, self.burst_started + fraction * self.duration_s
                                - time.monotonic()))

    async def run(self, chaos: object) -> None:
        """The burst with a chaos coroutine function beside it; restart what stayed dead."""
        self.burst_started = time.monotonic()
        load = asyncio.create_task(self.burst())
        try:
            await chaos(self)  # type: ignore[operator]
        finally:
            await load
        if not self.stack.writer.alive():
            self.stack.writer.start()

    # --- checks ---------------------------------------------------------------------------

    async def settle(self, timeout_s: float = 60) -> int | None:
        """Wait until Redis and PostgreSQL agree (nothing in the outbox, remaining + sold ==
        stock). Returns the remaining stock in Redis (None: the sale is not in Redis)."""
        k = self.keys.sale(self.sale_id)
        deadline = time.monotonic() + timeout_s
        while True:
            raw = await self.redis.get(k.stock)
            remaining = int(raw) if raw is not None else None
            sold = await self.pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1",
                                          self.sale_id)
            backlog = await self.redis.xlen(k.outbox)
            if remaining is not None and remaining + sold == self.stock and backlog == 0:
                return remaining
            if time.monotonic() > deadline:
                return remaining
            await asyncio.sleep(0.2)

    async def verify(self, settle_s: float = 60) -> FaultReport:
        remaining = await self.settle(settle_s)
        rows = await self.pg.fetch(
            "SELECT o.order_id, o.user_id, o.created_at, o.persisted_at, i.qty"
            " FROM orders o JOIN order_items i USING (order_id) WHERE o.sale_id = $1",
            self.sale_id)
        sold = await self.pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1",
                                      self.sale_id)
        in_pg = {r["order_id"]: r for r in rows}
        accepted = {c.order_id: c for c in self.clicks if c.order_id}
        lost = [o for o in accepted if o not in in_pg]
        wrong_owner = [o for o, c in accepted.items() if o in in_pg
                       and in_pg[o]["user_id"] != c.user]
        assert not wrong_owner, f"orders owned by another user: {wrong_owner[:5]}"
        units = Counter[str]()
        orders_per_user = Counter[str]()
        for r in rows:
            units[r["user_id"]] += r["qty"]
            orders_per_user[r["user_id"]] += 1
        accepted_keys = Counter(c.user for c in self.clicks if c.order_id)
        duplicated = sum(max(0, n - max(1, accepted_keys[u])) for u, n in orders_per_user.items())
        total_units = sum(units.values())
        assert total_units == sold, f"order units {total_units} != flash_sales.sold {sold}"
        return FaultReport(
            scenario=self.name,
            sent=sum(len(c.statuses) for c in self.clicks),
            accepted=len(accepted),
            persisted=len(accepted) - len(lost),
            lost=len(lost),
            duplicated=duplicated,
            over_limit=sum(1 for n in units.values() if n > PER_USER_LIMIT),
            oversold=max(0, sold - self.stock) + (1 if remaining is not None and remaining < 0
                                                  else 0),
            drift=self.stock - remaining - sold if remaining is not None else self.stock,
            unanswered=len(set(in_pg) - set(accepted)),
            recovery_s=self._recovery(rows),
            accepting_s=self._accepting_again(),
            faults=[f.name for f in self.faults],
            wall_s=time.monotonic() - self.started_at,
            answers=dict(Counter(c.statuses[-1] for c in self.clicks if c.statuses)),
        )

    def _recovery(self, rows: list[asyncpg.Record]) -> float:
        """Per fault: from its end to the commit of the last order accepted before that end."""
        worst = 0.0
        for f in self.faults:
            assert f.ended is not None
            before = [r["persisted_at"].timestamp() for r in rows
                      if r["created_at"].timestamp() <= f.ended]
            if before:
                worst = max(worst, max(before) - f.ended)
        return worst

    def _accepting_again(self) -> float:
        """Per fault: from its end to the first 202 answered after it (0 if none followed
        because the sale had sold out)."""
        worst = 0.0
        answers = sorted(c.answered_at for c in self.clicks if c.answered_at is not None)
        for f in self.faults:
            assert f.ended is not None
            after = [t for t in answers if t >= f.ended]
            if after:
                worst = max(worst, after[0] - f.ended)
        return worst


def assert_no_loss(report: FaultReport) -> None:
    assert report.accepted > 0, report.line()
    assert report.lost == 0, report.line()
    assert report.duplicated == 0, report.line()
    assert report.over_limit == 0, report.line()
    assert report.oversold == 0, report.line()
    assert report.drift == 0, report.line()
