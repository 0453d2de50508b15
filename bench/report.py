"""Benchmark reports: a JSON file, a PNG chart and a section appended to bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from bench.wrk_runner import WrkResult

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"


class RunLike(Protocol):
    workers: int
    results: list[WrkResult]
    checks: dict[str, Any]


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}"


def _by(run: RunLike) -> dict[str, WrkResult]:
    return {r.scenario: r for r in run.results}


def ratios(run: RunLike) -> dict[str, float]:
    r = _by(run)
    floor = r["floor"].rps or 1.0
    return {
        "admission_vs_floor": r["admission"].rps / floor,
        "sold_out_vs_floor": r["sold_out"].rps / floor,
        "naive_vs_floor": r["naive_pg"].rps / floor,
        "admission_vs_naive": r["admission"].rps / max(r["naive_pg"].rps, 1.0),
        "admission_p99_vs_floor_p99": r["admission"].p99_ms / max(r["floor"].p99_ms, 0.001),
    }


def markdown(runs: list[RunLike], command: str, seconds: float, connections: int) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {now}: peak harness", "",
             f"Machine: {machine()}. Command: `{command}` ({seconds:g} s per scenario, "
             f"{connections} connections, wrk with one thread on the same machine).", "",
             "| processes | scenario | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        for r in run.results:
            lines.append(f"| {run.workers} | {r.scenario} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
                         f"{r.p99_ms:.2f} | {r.non_2xx} | {r.errors} |")
    lines += ["", "| processes | admission/floor | sold-out/floor | naive/floor | "
              "admission/naive | admission p99/floor p99 | writer drain/accept | "
              "lag p50 s | lag p99 s | correct |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        q, c = ratios(run), run.checks
        lines.append(
            f"| {run.workers} | {q['admission_vs_floor']:.2f} | {q['sold_out_vs_floor']:.2f} | "
            f"{q['naive_vs_floor']:.2f} | {q['admission_vs_naive']:.1f} | "
            f"{q['admission_p99_vs_floor_p99']:.2f} | {c.get('drain_vs_accept', 0):.1f} | "
            f"{c.get('lag_p50_s', 0):.3f} | {c.get('lag_p99_s', 0):.3f} | "
            f"{'yes' if c.get('ok') else 'NO'} |")
    return "\n".join(lines) + "\n"


def chart(runs: list[RunLike], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenarios = [r.scenario for r in runs[0].results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        xs = [j + i * width for j in range(len(scenarios))]
        by = _by(run)
        ax1.bar(xs, [by[s].rps for s in scenarios], width, label=f"{run.workers} process(es)")
        ax2.bar(xs, [by[s].p99_ms for s in scenarios], width, label=f"{run.workers} process(es)")
    for ax, title in ((ax1, "requests/s"), (ax2, "p99 latency (ms)")):
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(scenarios))])
        ax.set_xticklabels(scenarios, rotation=20)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_reports(runs: list[RunLike], out: Path, command: str, seconds: float,
                  connections: int, record: bool) -> str:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    data = {"machine": machine(), "command": command, "seconds": seconds,
            "connections": connections,
            "runs": [{"workers": r.workers, "results": [x.as_dict() for x in r.results],
                      "ratios": ratios(r), "checks": r.checks} for r in runs]}
    (out / f"peak-{stamp}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    charted = chart(runs, out / f"peak-{stamp}.png")
    text = markdown(runs, command, seconds, connections)
    if record:
        with RESULTS_MD.open("a") as f:
            f.write("\n" + text)
    return text + (f"\nchart: {out}/peak-{stamp}.png\n" if charted else "")
