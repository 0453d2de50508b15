"""The Redis cache of product details.

Each product has a generation token that every change replaces (after its transaction
commits). A cached detail records the token it was built under and is served only while that
token is still current, so a reader that loaded old rows just before a change can never
re-install them: its entry carries the superseded token and is ignored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from catalog_api.keys import CatalogKeys

# Generation tokens outlive every entry built under them (entries live product_cache_ttl_s).
MIN_GENERATION_TTL_S = 86_400
NO_GENERATION = b"0"


@dataclass(frozen=True, slots=True)
class CachedDetail:
    body: bytes
    etag: str
    published: bool


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache holds for a product: the current generation and a usable entry, if any."""

    generation: bytes
    entry: CachedDetail | None


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


async def lookup(redis: Redis, keys: CatalogKeys, product_id: int) -> Lookup:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.product_detail(product_id), "gen", "etag", "published", "body")
        pipe.get(keys.product_generation(product_id))
        (gen, etag, published, body), current = await pipe.execute()
    current = current or NO_GENERATION
    if body is None or gen != current or etag is None:
        return Lookup(current, None)
    return Lookup(current, CachedDetail(body, etag.decode(), published == b"1"))


async def store(
    redis: Redis, keys: CatalogKeys, product_id: int, generation: bytes,
    detail: CachedDetail, ttl_s: int,
) -> None:
    key = keys.product_detail(product_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"gen": generation, "etag": detail.etag,
                                "published": "1" if detail.published else "0",
                                "body": detail.body})
        pipe.expire(key, ttl_s)
        await pipe.execute()


async def invalidate(redis: Redis, keys: CatalogKeys, product_ids: Iterable[int],
                     ttl_s: int) -> None:
    """Call after the change has committed."""
    ids = sorted(set(product_ids))
    if not ids:
        return
    generation_ttl = max(MIN_GENERATION_TTL_S, 10 * ttl_s)
    async with redis.pipeline(transaction=False) as pipe:
        for product_id in ids:
            pipe.set(keys.product_generation(product_id), secrets.token_hex(8),
                     ex=generation_ttl)
            pipe.delete(keys.product_detail(product_id))
        await pipe.execute()
