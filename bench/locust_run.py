"""A Locust promotion day, headless and bounded, on loopback.

Starts a fresh mall (database `mall_locust`, its own namespace, `mall serve --workers 2` and
`mall writer`) unless --url names a running one, creates the day's data through the API, runs
bench/locustfile.py for --seconds, prints a per-request table from Locust's CSV stats and
checks that the flash sale did not oversell and that its accepted orders were persisted.

    python -m bench.locust_run --users 50 --seconds 30
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import click

from bench.locust_prep import prepare
from bench.locust_report import (
    answers_table,
    check_sale,
    failures_table,
    markdown,
    stats_table,
)
from bench.locust_stack import local_stack
from mall.auth import issue_token
from mall.settings import Settings

OUT = Path(__file__).resolve().parent / "out"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
CSV_PREFIX = OUT / "locust-run"
PLAN = OUT / "locust-plan.json"
ACCEPTED = OUT / "locust-accepted.txt"
OUTCOMES = OUT / "locust-outcomes.json"
RESULTS = OUT / "locust-results.md"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def target(url: str | None) -> Iterator[tuple[str, dict[str, str]]]:
    if url:
        yield url.rstrip("/"), dict(os.environ)
    else:
        with local_stack(OUT) as stack:
            yield stack


def run_locust(base: str, env: dict[str, str], users: int, rate: float, seconds: int) -> int:
    env = {**env, "LOCUST_MALL_PLAN": str(PLAN), "LOCUST_MALL_ACCEPTED": str(ACCEPTED),
           "LOCUST_MALL_OUTCOMES": str(OUTCOMES)}
    args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", base,
            "--headless", "-u", str(users), "-r", f"{rate:g}", "--run-time", f"{seconds}s",
            "--stop-timeout", "5", "--csv", str(CSV_PREFIX), "--only-summary",
            "--logfile", str(OUT / "locust-run.log"), "--loglevel", "WARNING"]
    with (OUT / "locust-run.out").open("wb") as out:
        # Bounded: the run time, the stop timeout and a margin for start-up and reports.
        return subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=seconds + 60, check=False).returncode


@click.command()
@click.option("--users", default=50, show_default=True, type=click.IntRange(1, 2000))
@click.option("--spawn-rate", default=10.0, show_default=True, type=click.FloatRange(0.1, 500),
              help="Users started per second.")
@click.option("--seconds", default=30, show_default=True, type=click.IntRange(5, 600))
@click.option("--url", default=None, help="A running mall on loopback (default: start one).")
@click.option("--sale-stock", default=None, type=click.IntRange(1, 100_000),
              help="Units in the flash sale [default: users / 10].")
@click.option("--sale-delay", default=10.0, show_default=True, type=click.FloatRange(1, 300),
              help="Seconds between preparing the data and the sale's start.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Write the section for bench/RESULTS.md to bench/out/locust-results.md.")
def main(users: int, spawn_rate: float, seconds: int, url: str | None, sale_stock: int | None,
         sale_delay: float, record: bool) -> None:
    if url and not is_loopback(url):
        raise click.BadParameter("only loopback addresses are load-tested", param_hint="--url")
    stock = sale_stock or max(1, users // 10)
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in (ACCEPTED, OUTCOMES, *OUT.glob(f"{CSV_PREFIX.name}_*.csv")):
        stale.unlink(missing_ok=True)
    admin = issue_token(Settings.from_env().jwt_secret, "locust-admin", "admin", 3600)
    with target(url) as (base, env):
        plan = prepare(base, admin, stock, sale_delay, PLAN)
        click.echo(f"mall at {base}; flash sale {plan['sale_id']} of {stock} units starts "
                   f"{plan['sale_starts_at']}; {users} users for {seconds}s ...")
        code = run_locust(base, env, users, spawn_rate, seconds)
        accepted = ACCEPTED.read_text().split() if ACCEPTED.exists() else []
        check = check_sale(base, admin, plan["sale_id"], accepted)
    stats = Path(f"{CSV_PREFIX}_stats.csv")
    if not stats.exists():
        raise click.ClickException(f"locust wrote no stats (exit {code}): see {OUT}/locust-run.*")
    tables = [stats_table(stats), failures_table(Path(f"{CSV_PREFIX}_failures.csv"))]
    if OUTCOMES.exists():
        tables.append(answers_table(json.loads(OUTCOMES.read_text()), plan["sale_starts_at"]))
    tables = [t for t in tables if t]
    click.echo("\n\n".join(tables) + "\n\n" + check.describe())
    if record:
        command = "python -m bench.locust_run " + " ".join(sys.argv[1:])
        RESULTS.write_text(markdown(command.strip(), users, seconds, tables, check))
        click.echo("section for bench/RESULTS.md written to bench/out/locust-results.md")
    sys.exit(0 if check.ok else 1)


if __name__ == "__main__":
    main()
