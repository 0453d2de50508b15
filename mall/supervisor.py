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


def _spawn(host: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "mall.cli", "serve", "--host", host, "--port", str(port),
           "--workers", "1", "--reuse-port"]
    return subprocess.Popen(cmd, env=env)


def supervise(host: str, port: int, workers: int) -> int:
    env = dict(os.environ)
    own_dir = None
    if not env.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="mall-metrics-")
        env[MULTIPROC_ENV] = own_dir
    os.environ[MULTIPROC_ENV] = env[MULTIPROC_ENV]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = [_spawn(host, port, env) for _ in range(workers)]
    log.info("supervising %d workers on %s:%d", workers, host, port)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.warning("worker %d exited with %s; restarting", child.pid, child.returncode)
                    mark_worker_dead(child.pid)
                    time.sleep(RESTART_PAUSE_S)
                    children[i] = _spawn(host, port, env)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0
