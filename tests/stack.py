"""Test support: isolated namespaces, real service clean-up, and real `mall` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from mall.auth import issue_token
from mall.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def unique_namespace(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def window(start_in_s: float = -1, length_s: float = 3600) -> tuple[str, str]:
    starts = now() + timedelta(seconds=start_in_s)
    return iso(starts), iso(starts + timedelta(seconds=length_s))


def token(settings: Settings, sub: str, role: str = "customer", ttl: int = 3600) -> str:
    return issue_token(settings.jwt_secret, sub, role, ttl)


def auth(settings: Settings, sub: str, role: str = "customer") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, sub, role)}"}


@dataclass
class MallProcess:
    """One real `mall serve` or `mall writer` process, with its log kept as a test artifact."""

    args: list[str]
    env: dict[str, str]
    log_name: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{self.log_name}.log"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mall.cli", *self.args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,
        )
        log.close()

    def kill9(self) -> None:
        """SIGKILL the process group: the server and any workers it spawned."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def restart(self) -> None:
        self.kill9()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """`mall serve` plus `mall writer` as real processes on one namespace."""

    settings: Settings
    port: int
    server: MallProcess
    writer: MallProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def create(cls, settings: Settings, name: str, workers: int = 1) -> Stack:
        port = free_port()
        env = settings.process_env()
        server = MallProcess(
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env, f"{name}-serve",
        )
        writer = MallProcess(["writer"], env, f"{name}-writer")
        return cls(settings, port, server, writer)

    async def start(self) -> None:
        self.server.start()
        self.writer.start()
        await self.wait_ready()

    async def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if not self.server.alive():
                    raise RuntimeError(f"server exited:\n{self.server.tail()}")
                try:
                    async with session.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout_s}s:\n{self.server.tail()}")

    def stop(self) -> None:
        self.server.stop()
        self.writer.stop()


async def request_json(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.read()
        try:
            return resp.status, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return resp.status, body.decode(errors="replace")
