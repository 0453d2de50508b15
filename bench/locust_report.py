"""Reading Locust's CSV stats into a table, and the flash sale's checks after a run."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.report import machine

HEADER = ("| request | requests | failures | req/s | p50 ms | p95 ms | p99 ms |\n"
          "|---|---|---|---|---|---|---|")


def stats_table(stats_csv: Path) -> str:
    lines = [HEADER]
    with stats_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["Name"] if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"
            lines.append(
                f"| {name} | {int(row['Request Count']):,} | {int(row['Failure Count']):,} | "
                f"{float(row['Requests/s']):,.1f} | {row['50%']} | {row['95%']} | {row['99%']} |")
    return "\n".join(lines)


def answers_table(outcomes: dict[str, Any], sale_starts_at: str) -> str:
    """What the simulated users were answered, by scenario, status and error code."""
    lines = ["| scenario, answer | count |", "|---|---|"]
    lines += [f"| {answer} | {count:,} |" for answer, count in outcomes["answers"].items()]
    if outcomes["first_accept_at"]:
        first = datetime.fromisoformat(outcomes["first_accept_at"][0])
        after = (first - datetime.fromisoformat(sale_starts_at)).total_seconds()
        lines.append(f"| first flash-sale 202, seconds after the start time | {after:.2f} |")
    return "\n".join(lines)


def failures_table(failures_csv: Path) -> str:
    if not failures_csv.exists():
        return ""
    with failures_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return ""
    lines = ["| request | error | occurrences |", "|---|---|---|"]
    lines += [f"| {r['Method']} {r['Name']} | {r['Error']} | {r['Occurrences']} |" for r in rows]
    return "\n".join(lines)


@dataclass
class SaleCheck:
    stock: int
    remaining: int
    state: str
    accepted_202: int
    sampled: int
    persisted: int

    @property
    def ok(self) -> bool:
        return (0 <= self.remaining <= self.stock
                and self.accepted_202 == self.stock - self.remaining
                and self.persisted == self.sampled)

    def describe(self) -> str:
        return (f"flash sale: stock {self.stock}, remaining {self.remaining} ({self.state}), "
                f"accepted units {self.stock - self.remaining}, 202 answers "
                f"{self.accepted_202}; persisted {self.persisted} of {self.sampled} sampled "
                f"orders -> {'OK: no oversell' if self.ok else 'PROBLEM'}")


def check_sale(base: str, staff_token: str, sale_id: int, order_ids: list[str],
               sample: int = 50, timeout_s: float = 30) -> SaleCheck:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {staff_token}"
    sale: dict[str, Any] = session.get(f"{base}/api/v1/flash-sales/{sale_id}", timeout=10).json()
    pending = set(order_ids[:sample])
    started = time.monotonic()
    while pending and time.monotonic() - started < timeout_s:
        for order_id in list(pending):
            resp = session.get(f"{base}/api/v1/orders/{order_id}", timeout=10)
            if resp.status_code == 200 and resp.json()["status"] != "queued":
                pending.discard(order_id)
        if pending:
            time.sleep(0.2)
    sampled = min(sample, len(order_ids))
    return SaleCheck(int(sale["stock"]), int(sale["remaining"]), str(sale["state"]),
                     len(order_ids), sampled, sampled - len(pending))


def markdown(command: str, users: int, seconds: float, tables: list[str],
             check: SaleCheck) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"## {now}: Locust promotion day", "",
             f"Machine: {machine()}. Command: `{command}` ({users} users, {seconds:g} s, "
             "Locust on the same machine).", ""]
    for table in tables:
        parts += [table, ""]
    return "\n".join([*parts, check.describe() + ".", ""])
