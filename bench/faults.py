"""Fault runs with bigger bursts: each scenario of tests/faults on private Redis, PostgreSQL and
RabbitMQ instances (loopback, bounded), then a table of what every 202 became.

    python -m bench.faults [--users 10000] [--stock 7500] [--scenarios kill9,postgres] [--seed 7]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from bench.report import machine
from tests.faults.harness import FaultReport, FaultRun
from tests.faults.scenarios import BY_NAME, SCENARIOS, Scenario

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BASE_USERS = 2_000


async def run_one(scenario: Scenario, users: int, stock: int, seed: int) -> FaultReport:
    duration = scenario.duration_s * max(1.0, users / BASE_USERS) ** 0.5
    async with FaultRun(f"bench-{scenario.name}", stock=stock, users=users,
                        duration_s=duration, seed=seed, appendfsync=scenario.appendfsync) as run:
        await run.run(scenario.chaos)
        report = await run.verify()
        if report.drift and not scenario.strict:
            await run.reconcile_repair()
            report = await run.verify()
        report.scenario = scenario.name
        return report


def table(reports: list[FaultReport]) -> str:
    lines = ["| " + " | ".join(FaultReport.HEADER) + " |",
             "|" + "---|" * len(FaultReport.HEADER)]
    lines += ["| " + " | ".join(r.row()) + " |" for r in reports]
    return "\n".join(lines)


def record(reports: list[FaultReport], command: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    faults = "\n".join(f"- {r.scenario}: {', '.join(r.faults)}; final answers {r.answers}"
                       for r in reports)
    text = (f"\n## {stamp}: fault runs\n\nMachine: {machine()}. Command: `{command}` "
            "(private Redis, PostgreSQL and RabbitMQ per scenario on loopback; paced "
            "clients retrying with the same Idempotency-Key).\n\n"
            f"{table(reports)}\n\nsent counts every request including retries; lost = 202 "
            "without an order row; dup = order rows beyond one per user (limit 1); drift = "
            "stock - Redis remaining - PostgreSQL sold once settled; recovery_s = from the "
            "fault's end to the commit of the last order accepted before it (worst fault); "
            "accepting_s = from the fault's end to the first 202 after it.\n\n"
            f"{faults}\n")
    with RESULTS.open("a") as out:
        out.write(text)


@click.command()
@click.option("--users", default=10_000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--stock", default=7_500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--scenarios", "names", default=",".join(s.name for s in SCENARIOS),
              show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--record/--no-record", "keep", default=True, show_default=True,
              help="Append the table to bench/RESULTS.md.")
def cli(users: int, stock: int, names: str, seed: int, keep: bool) -> None:
    reports = []
    for name in names.split(","):
        scenario = BY_NAME[name.strip()]
        click.echo(f"running {scenario.name} ...")
        report = asyncio.run(run_one(scenario, users, stock, seed))
        click.echo(report.line())
        reports.append(report)
    click.echo(table(reports))
    if keep:
        record(reports, "python -m bench.faults " + " ".join(sys.argv[1:]))
    strict_failures = [r for r in reports if BY_NAME[r.scenario].strict and
                       (r.lost or r.duplicated or r.over_limit or r.oversold or r.drift)]
    loose_failures = [r for r in reports if r.duplicated or r.over_limit or r.oversold]
    if strict_failures or loose_failures:
        click.echo("INVARIANT BROKEN", err=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()
