"""A three-master Redis Cluster of its own, on free loopback ports, for one test module."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

MASTERS = 3
READY_TIMEOUT_S = 30.0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free port whose cluster bus port (+10000) is free too: at most 55535."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port <= 55535 and _port_free(port + 10000):
            return port


def _binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing (Debian package redis-server / redis-tools)"
    return path


@contextlib.contextmanager
def local_cluster() -> Iterator[list[int]]:
    """Start the nodes, join them into a cluster, yield their ports, stop and remove them."""
    server, cli = _binary("redis-server"), _binary("redis-cli")
    workdir = Path(tempfile.mkdtemp(prefix="mall-cluster-"))
    ports: list[int] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(MASTERS):
            port = _free_port()
            node_dir = workdir / str(port)
            node_dir.mkdir()
            processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--dir", str(node_dir),
                 "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in ports:
            while subprocess.run([cli, "-p", str(port), "ping"], capture_output=True,
                                 text=True).stdout.strip() != "PONG":
                assert time.monotonic() < deadline, f"cluster node {port} did not start"
                time.sleep(0.05)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=READY_TIMEOUT_S)
        for port in ports:
            while "cluster_state:ok" not in subprocess.run(
                    [cli, "-p", str(port), "cluster", "info"], capture_output=True,
                    text=True).stdout:
                assert time.monotonic() < deadline, "the cluster did not become ready"
                time.sleep(0.1)
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
