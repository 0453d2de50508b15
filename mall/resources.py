"""Typed application keys and one cleanup context per resource.

Nothing connects at import time: each context connects, pings, yields, and closes on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from mall.auth import TokenVerifier
from mall.keys import Keys
from mall.settings import Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", Keys)
VERIFIER = web.AppKey("verifier", TokenVerifier)
REDIS = web.AppKey("redis", Redis)
PG = web.AppKey("pg", asyncpg.Pool)


def make_redis(settings: Settings) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
        protocol=2,
    )
    return Redis(connection_pool=pool)


async def make_pg_pool(settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=settings.pg_pool_max, command_timeout=30,
        # JIT compilation once cost seconds on a search plan; the mall's queries are short.
        server_settings={"jit": "off"},
    )


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = make_redis(app[SETTINGS])
    await redis.ping()
    app[REDIS] = redis
    yield
    await redis.aclose()


async def pg_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await make_pg_pool(app[SETTINGS])
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    app[PG] = pool
    yield
    await asyncio.wait_for(pool.close(), timeout=10)
