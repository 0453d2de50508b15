"""A throwaway mall for a Locust run: fresh database and namespace, `mall serve` and `mall writer`.

The database `mall_locust` is dropped and migrated at the start (and left for inspection); the
namespace's Redis keys and RabbitMQ queues are removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from bench.procs import background, free_port, wait_http
from mall.migrate import drop_database, migrate
from mall.namespace import drop_namespace
from mall.settings import Settings


def stack_settings() -> Settings:
    base = Settings.from_env()
    url = base.database_url.rsplit("/", 1)[0] + "/mall_locust"
    # Orders of the day stay unpaid for most of it: no payment deadline inside the run.
    # Every simulated user comes from one loopback address: no per-IP limit in this run.
    return base.with_(database_url=url, namespace=f"locust_{int(time.time())}",
                      writer_metrics_port=0, payment_timeout_s=7 * 86_400,
                      rate_limit_ip=10_000_000)


def stack_env(settings: Settings) -> dict[str, str]:
    # Payers pay in the sandbox of this local stack.
    return settings.process_env(MALL_LOG_LEVEL="WARNING", MALL_PAYMENTS_SANDBOX="on")


@contextlib.contextmanager
def local_stack(out: Path, workers: int = 2) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield the base URL and the environment of a mall started for this run, then stop it."""
    settings = stack_settings()
    asyncio.run(drop_database(settings.database_url))
    asyncio.run(migrate(settings.database_url))
    env = stack_env(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        with background(["mall.cli", "serve", "--port", str(port), "--workers", str(workers)],
                        env, out / "locust-serve.log"):
            wait_http(f"{base}/readyz")
            with background(["mall.cli", "writer"], env, out / "locust-writer.log"):
                yield base, env
    finally:
        asyncio.run(drop_namespace(settings))
