"""Runs wrk against a loopback URL for a bounded time and reads its numbers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).resolve().parent / "wrk" / "rotating_post.lua"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    scenario: str
    workers: int
    requests: int
    non_2xx: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse(output: str, scenario: str, workers: int, seconds: float) -> WrkResult:
    def number(pattern: str, default: str = "0") -> str:
        match = re.search(pattern, output)
        return match[1] if match else default

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return WrkResult(
        scenario=scenario, workers=workers,
        requests=int(number(r"(\d+) requests in")),
        non_2xx=int(number(r"Non-2xx or 3xx responses: (\d+)")),
        errors=errors,
        rps=float(number(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(number(r"\n\s+50%\s+(\S+)", "0us")),
        p99_ms=_ms(number(r"\n\s+99%\s+(\S+)", "0us")),
        seconds=seconds,
    )


def run_wrk(url: str, scenario: str, workers: int, seconds: float, connections: int,
            post_path: str | None = None, tokens: Path | None = None) -> WrkResult:
    host = urlsplit(url).hostname or ""
    if not (host.startswith("127.") or host in {"localhost", "::1"}):
        raise ValueError("benchmarks only target loopback addresses")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk'; `make bench` installs it)")
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "5s"]
    env = dict(os.environ)
    if post_path is not None:
        assert tokens is not None
        cmd += ["-s", str(LUA)]
        env.update(BENCH_PATH=post_path, BENCH_TOKENS=str(tokens))
    cmd.append(url)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    return parse(out, scenario, workers, seconds)
