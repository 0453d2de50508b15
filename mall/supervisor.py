"""`mall serve --workers N`: N worker processes on one port, restarted if they die.

Every worker binds the port with SO_REUSEPORT and the kernel spreads connections among them.
They share one PROMETHEUS_MULTIPROC_DIR so any worker's /metrics reports all of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from mall.metrics import MULTIPROC_ENV, mark_worker_dead

log = logging.getLogger(__name__)
RESTART_PAUSE_S = 0.5
STOP_TIMEOUT_S = 15.0


class Supervisor:
    def __init__(self, host: str, port: int, workers: int) -> None:
        self.cmd = [sys.executable, "-m", "mall.cli", "serve", "--host", host, "--port",
                    str(port), "--workers", "1", "--reuse-port"]
        self.workers = workers
        self.env = dict(os.environ)
        self.own_dir: str | None = None
        if not self.env.get(MULTIPROC_ENV):
            self.own_dir = tempfile.mkdtemp(prefix="mall-metrics-")
            self.env[MULTIPROC_ENV] = self.own_dir
        os.environ[MULTIPROC_ENV] = self.env[MULTIPROC_ENV]
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.cmd, env=self.env)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.children = [self._spawn() for _ in range(self.workers)]
        log.info("supervising %d workers", self.workers)
        try:
            while not self.stopping:
                time.sleep(0.2)
                self._restart_dead()
        finally:
            self._stop_all()
        return 0

    def _restart_dead(self) -> None:
        for i, child in enumerate(self.children):
            if child.poll() is not None and not self.stopping:
                log.warning("worker %d exited with %s; restarting", child.pid, child.returncode)
                mark_worker_dead(child.pid)
                time.sleep(RESTART_PAUSE_S)
                self.children[i] = self._spawn()

    def _stop_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.own_dir:
            shutil.rmtree(self.own_dir, ignore_errors=True)


def supervise(host: str, port: int, workers: int) -> int:
    return Supervisor(host, port, workers).run()
