"""Private Redis, PostgreSQL and RabbitMQ instances for fault tests.

Each instance lives in a temporary directory and listens on a free loopback port, so a test can
stop, kill -9, restart or wipe it without touching the services other runs share. Every wait is
bounded; a service that does not come up fails the test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str, log: Path,
              timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} not listening on {port} within {timeout_s}s:\n{tail(log)}")


def wait_port_closed(port: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still open after {timeout_s}s")
        time.sleep(0.05)


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def kill_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    """Signal the process group this module started (the service and its helpers)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@dataclass
class RedisServer:
    root: Path
    appendfsync: str = "everysec"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        return self.root / "redis"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes",
                "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no",
                "--protected-mode", "yes"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_port(self.port, self.proc, "redis-server", self.log)
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                 capture_output=True, text=True, timeout=10)
            if out.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis not loaded:\n{tail(self.log)}")

    def kill9(self) -> None:
        kill_group(self.proc)
        wait_port_closed(self.port)

    def stop(self) -> None:
        """A clean shutdown: Redis writes and fsyncs its AOF before it exits."""
        kill_group(self.proc, signal.SIGTERM)
        wait_port_closed(self.port)

    def wipe(self) -> None:
        """Lose every byte Redis had (it must be down)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class PostgresServer:
    root: Path
    port: int = field(default_factory=free_port)
    bin_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin_dir = Path(found[-1]).parent if found else Path(shutil.which("initdb") or
                                                                   "initdb").parent

    @property
    def data_dir(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def log(self) -> Path:
        return self.root / "pg" / "pg.log"

    def url(self, database: str = "mall") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = READY_TIMEOUT_S) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}\n{tail(self.log)}")

    def init(self) -> None:
        pg_root = self.root / "pg"
        pg_root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(pg_root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "-N")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root / 'pg'}"
                   " -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        wait_port(self.port, None, "postgres", self.log)

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, recovery from the WAL at the next start."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")
        wait_port_closed(self.port)


@dataclass
class RabbitServer:
    root: Path
    name: str
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def log(self) -> Path:
        return self.root / "rabbit" / "out.log"

    def _env(self) -> dict[str, str]:
        base = self.root / "rabbit"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(base / "home"),  # the private Erlang cookie lives here
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _script(self, name: str) -> str:
        private = Path("/usr/lib/rabbitmq/bin") / name  # runs as the caller, unlike /usr/sbin
        return str(private) if private.exists() else name

    def prepare(self) -> None:
        base = self.root / "rabbit"
        (base / "home").mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        cookie = base / "home" / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex())
        cookie.chmod(0o400)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self._script("rabbitmq-server")], env=self._env(),
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_port(self.port, self.proc, "rabbitmq-server", self.log)

    def kill9(self) -> None:
        kill_group(self.proc)
        wait_port_closed(self.port)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([self._script("rabbitmqctl"), "-n", self.node, "stop"],
                           env=self._env(), capture_output=True, timeout=STOP_TIMEOUT_S)
        kill_group(self.proc, signal.SIGTERM)
        wait_port_closed(self.port)


@dataclass
class PrivateServices:
    redis: RedisServer
    pg: PostgresServer
    rabbit: RabbitServer
    root: Path

    def restart_redis(self, kill: bool = True) -> None:
        self.redis.kill9() if kill else self.redis.stop()
        self.redis.start()

    def restart_rabbit(self, kill: bool = True) -> None:
        self.rabbit.kill9() if kill else self.rabbit.stop()
        self.rabbit.start()


@contextlib.contextmanager
def private_services(name: str, appendfsync: str = "always") -> Iterator[PrivateServices]:
    """Start Redis, PostgreSQL and RabbitMQ of this test's own; stop and remove them after."""
    root = Path(tempfile.mkdtemp(prefix=f"mall-{name}-"))
    redis = RedisServer(root, appendfsync)
    pg = PostgresServer(root)
    rabbit = RabbitServer(root, f"{name}{os.getpid()}")
    rabbit.prepare()
    started: list[object] = []
    try:
        rabbit.start()
        started.append(rabbit)
        pg.init()
        pg.start()
        started.append(pg)
        redis.start()
        started.append(redis)
        yield PrivateServices(redis, pg, rabbit, root)
    finally:
        if redis in started:
            with contextlib.suppress(Exception):
                redis.kill9()
        if pg in started:
            with contextlib.suppress(Exception):
                pg.stop("immediate")
        if rabbit in started:
            with contextlib.suppress(Exception):
                rabbit.kill9()
        shutil.rmtree(root, ignore_errors=True)
