"""The fault scenarios, each a chaos coroutine run beside a paced burst (tests and benchmark).

Every scenario injects its faults at moments drawn from the run's seeded RNG, so a failing run
can be replayed with the same seed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.harness import FaultRun

Chaos = Callable[[FaultRun], Awaitable[None]]


async def kill_processes(run: FaultRun) -> None:
    """kill -9 a serving worker (API and relay), the whole `mall serve` and the writer, in a
    seeded random order at seeded random moments."""
    victims = ["worker", "writer", "serve", "worker", "writer", "worker"]
    run.rng.shuffle(victims)
    moments = sorted(run.rng.uniform(0.1, 0.85) for _ in victims)
    for victim, moment in zip(victims, moments, strict=True):
        await run.at(moment)
        if victim == "worker":
            await run.kill_worker()
        elif victim == "writer":
            await run.kill_writer()
        else:
            await run.kill_serve()


async def restart_rabbitmq(run: FaultRun) -> None:
    await run.at(run.rng.uniform(0.2, 0.3))
    await run.restart_rabbit(down_s=1.0)


async def stop_postgres(run: FaultRun) -> None:
    await run.at(run.rng.uniform(0.15, 0.2))
    await run.stop_postgres(down_s=10.0)


async def kill_redis(run: FaultRun) -> None:
    await run.at(run.rng.uniform(0.3, 0.5))
    await run.restart_redis(kill=True)


async def restart_redis_cleanly(run: FaultRun) -> None:
    await run.at(run.rng.uniform(0.3, 0.5))
    await run.restart_redis(kill=False)


async def lose_redis(run: FaultRun) -> None:
    await run.at(run.rng.uniform(0.3, 0.4))
    await run.lose_redis()


async def combined(run: FaultRun) -> None:
    """One fault of each kind (Redis loss aside) in one burst, one after another."""
    await run.at(0.08)
    await run.kill_worker()
    await run.at(0.15)
    await run.restart_rabbit(down_s=1.0)
    await run.at(0.4)
    await run.kill_writer()
    await run.at(0.45)
    await run.stop_postgres(down_s=5.0)
    await run.at(0.7)
    await run.restart_redis(kill=True)
    await run.at(0.8)
    await run.kill_serve()
    await run.at(0.85)
    await run.kill_worker()


@dataclass(frozen=True)
class Scenario:
    name: str
    chaos: Chaos
    duration_s: float
    appendfsync: str = "always"
    strict: bool = True  # every 202 must persist exactly once


SCENARIOS = [
    Scenario("kill9", kill_processes, 14),
    Scenario("rabbitmq", restart_rabbitmq, 14),
    Scenario("postgres", stop_postgres, 16),
    Scenario("redis-always-kill9", kill_redis, 10, "always"),
    Scenario("redis-everysec-restart", restart_redis_cleanly, 10, "everysec"),
    Scenario("redis-everysec-kill9", kill_redis, 10, "everysec", strict=False),
    Scenario("redis-lost", lose_redis, 10, strict=False),
    Scenario("combined", combined, 30),
]
BY_NAME = {s.name: s for s in SCENARIOS}
