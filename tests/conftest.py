"""Fixtures on the real services. A service that is not reachable fails the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from mall.app import create_app
from mall.migrate import drop_database, migrate
from mall.namespace import drop_namespace
from mall.settings import Settings
from order_writer.consumer import OrderWriter
from tests.stack import unique_namespace

TEST_TUNING = dict(
    relay_claim_idle_ms=1000,
    writer_linger_ms=5,
    writer_metrics_port=0,
    writer_max_attempts=3,
    soldout_refresh_s=0.2,
    # Every test client is 127.0.0.1 and a few staff ids do most writes: the rate limits are
    # tested with their own settings (tests/e2e/test_rate_limits.py).
    rate_limit_ip=1_000_000,
    rate_limit_user=1_000_000,
)


def settings_for(database_url: str, prefix: str = "t", **changes: object) -> Settings:
    base = Settings.from_env()
    return base.with_(
        database_url=database_url, namespace=unique_namespace(prefix), **{**TEST_TUNING, **changes}
    )


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    base = Settings.from_env().database_url
    name = unique_namespace("mall_test_")
    url = base.rsplit("/", 1)[0] + f"/{name}"
    await migrate(url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def settings(database_url: str) -> AsyncIterator[Settings]:
    s = settings_for(database_url)
    yield s
    await drop_namespace(s)


@pytest.fixture
async def fresh_settings(database_url: str) -> AsyncIterator[Settings]:
    """A namespace of its own (Redis keys, queues) on the shared test database."""
    s = settings_for(database_url, "f")
    yield s
    await drop_namespace(s)


@pytest.fixture
async def own_database_settings(database_url: str) -> AsyncIterator[Settings]:
    """A database and a namespace of their own, for a test whose checks would see the work of
    the background loops that other apps run on the shared test database (they apply returned
    stock and settle sales database-wide, as one deployment's processes do)."""
    url = database_url.rsplit("/", 1)[0] + "/" + unique_namespace("mall_own_")
    await migrate(url)
    s = settings_for(url, "o")
    yield s
    await drop_namespace(s)
    await drop_database(url)


@pytest.fixture(scope="session")
async def pg(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    await client.ping()
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def running_writer(settings: Settings) -> AsyncIterator[OrderWriter]:
    writer = OrderWriter(settings)
    task = asyncio.create_task(writer.run())
    try:
        yield writer
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    """The real app (relay included) over real HTTP, with a writer consuming its queue."""
    async with running_writer(settings):
        server = TestServer(create_app(settings))
        test_client = TestClient(server)
        await test_client.start_server()
        yield test_client
        await test_client.close()
