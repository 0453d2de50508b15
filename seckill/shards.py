"""Hot-SKU sharding: one flash sale's stock split across K shards, each its own hash tag.

A sale created with `shards: K` keeps K copies of its admission state (meta, stock, buyers,
idempotency records, rate counters, order views, outbox), one per hash tag `{fs<id>}`,
`{fs<id>.1}` ... `{fs<id>.K-1}`, so on Redis Cluster they land on different nodes and K
scripts run at once. Each shard starts with an equal part of the stock.

A buyer always buys in their home shard (`crc32(user id) mod K`), so the per-user limit, the
Idempotency-Key record and the admission token stay one atomic script on one slot, exactly as
with one shard. When the home shard runs short, admission moves units to it from a sibling
with a two-step transfer (lua/shard_give.lua, then lua/shard_take.lua, then the giver's record
is deleted): the giver records the units as it removes them, the taker adds them once per
transfer id, so a crash between the steps leaves them "in transfer", counted by
`remaining()` and finished by `finish_transfers()` (the campaign upkeep loop runs it), never
lost and never added twice. The sale is sold out only when every shard is empty and nothing is
in transfer.

What is per shard rather than per sale: the per-IP and per-sale rate limits (each shard counts
its own; the per-sale limit is divided by K so the whole sale keeps it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from dataclasses import dataclass

from redis.asyncio import Redis

from mall.keys import Keys, SaleKeys
from mall.lua import Script

log = logging.getLogger(__name__)

MAX_SHARDS = 128
# After a borrow found every sibling empty, the same shard's next borrows answer "nothing" for
# this long without asking Redis (a sold-out answer is a snapshot; units a cancellation brings
# back are sold to the next asker after it).
DRY_S = 0.05


def home_shard(user_id: str, shards: int) -> int:
    """The shard a buyer always buys in: the same in every process."""
    return 0 if shards <= 1 else zlib.crc32(user_id.encode()) % shards


def split(units: int, shards: int) -> list[int]:
    """Each shard's part of `units`: equal, the first ones taking the remainder."""
    base, extra = divmod(units, shards)
    return [base + (1 if k < extra else 0) for k in range(shards)]


@dataclass(frozen=True, slots=True)
class Transfer:
    giver: int
    transfer_id: str
    taker: int
    units: int


def parse_transfers(giver: int, raw: dict[bytes, bytes]) -> list[Transfer]:
    found = []
    for tid, value in raw.items():
        taker, _, units = value.decode().partition(":")
        found.append(Transfer(giver, tid.decode(), int(taker), int(units)))
    return found


class ShardedStock:
    """Shard counts (cached: a sale's K never changes), transfers and sums over shards."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._give = Script(redis, "shard_give")
        self._take = Script(redis, "shard_take")
        self._counts: dict[int, int] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._dry_until: dict[tuple[int, int], float] = {}

    async def count(self, sale_id: int) -> int:
        """K of a sale, from its shard-0 meta hash, read once per process; 1 for a sale Redis
        does not know (yet), read again next time."""
        known = self._counts.get(sale_id)
        if known is not None:
            return known
        loaded, raw = await self._redis.hmget(self._keys.sale(sale_id).meta, "sale_id", "shards")
        if loaded is None:
            return 1  # not cached: the sale may be loaded later
        # A sale loaded before shards existed has no `shards` field: one shard.
        self._counts[sale_id] = count = max(1, int(raw or 1))
        return count

    def remember(self, sale_id: int, shards: int) -> None:
        self._counts[sale_id] = shards

    async def shard_keys(self, sale_id: int) -> list[SaleKeys]:
        return self._keys.sale_shards(sale_id, await self.count(sale_id))

    async def borrow(self, sale_id: int, shards: int, taker: int, needed: int) -> int:
        """Make shard `taker` hold at least `needed` units, moving stock from its siblings.
        Returns 0 when nothing could be moved (every sibling empty: sold out), else the units
        the taker now has or was given, and the caller asks its shard again.

        One borrow per (sale, shard) runs at a time in a process: the requests that find the
        same shard empty wait for it instead of each scanning the siblings. A borrow that
        found every sibling empty answers the next ones for DRY_S without asking Redis. Takes
        half of a sibling's stock at a time (at least `needed`), so a draining sale moves stock
        rarely."""
        lock = self._locks.setdefault((sale_id, taker), asyncio.Lock())
        async with lock:
            if time.monotonic() < self._dry_until.get((sale_id, taker), 0.0):
                return 0
            have = int(await self._redis.get(self._keys.sale(sale_id, taker).stock) or 0)
            if have >= needed:  # a borrow that ran meanwhile already refilled the shard
                return have
            moved = 0
            for step in range(1, shards):
                giver = (taker + step) % shards
                moved += await self._move(sale_id, giver, taker, needed - have - moved)
                if have + moved >= needed:
                    break
            if moved == 0:
                self._dry_until[(sale_id, taker)] = time.monotonic() + DRY_S
            return moved

    async def _move(self, sale_id: int, giver: int, taker: int, needed: int) -> int:
        giver_keys = self._keys.sale(sale_id, giver)
        remaining = int(await self._redis.get(giver_keys.stock) or 0)
        wanted = max(needed, (remaining + 1) // 2)
        transfer_id = os.urandom(8).hex()
        units, _ = await self._give(
            [giver_keys.stock, giver_keys.transfers_out, giver_keys.meta],
            [transfer_id, taker, wanted, 1])
        units = int(units)
        if units:
            await self._finish(sale_id, Transfer(giver, transfer_id, taker, units))
        return units

    async def _finish(self, sale_id: int, transfer: Transfer) -> None:
        taker_keys = self._keys.sale(sale_id, transfer.taker)
        await self._take([taker_keys.stock, taker_keys.transfers_in, taker_keys.meta],
                         [transfer.transfer_id, transfer.units])
        await self._redis.hdel(self._keys.sale(sale_id, transfer.giver).transfers_out,
                               transfer.transfer_id)

    async def pending(self, sale_id: int, shards: int) -> list[Transfer]:
        """Transfers given and not yet confirmed (taken or not)."""
        found: list[Transfer] = []
        for k in range(shards):
            raw = await self._redis.hgetall(self._keys.sale(sale_id, k).transfers_out)
            found.extend(parse_transfers(k, raw))
        return found

    async def in_transfer(self, sale_id: int, shards: int) -> int:
        """Units given by one shard and not yet added to another."""
        units = 0
        for t in await self.pending(sale_id, shards):
            taken = await self._redis.sismember(self._keys.sale(sale_id, t.taker).transfers_in,
                                                t.transfer_id)
            if not taken:
                units += t.units
        return units

    async def finish_transfers(self, sale_id: int) -> int:
        """Complete every transfer cut short (a crash between the two steps). Returns how many."""
        shards = await self.count(sale_id)
        if shards <= 1:
            return 0
        pending = await self.pending(sale_id, shards)
        for transfer in pending:
            await self._finish(sale_id, transfer)
        if pending:
            log.info("flash sale %s: finished %d stock transfer(s) between shards", sale_id,
                     len(pending))
        return len(pending)

    async def remaining(self, sale_id: int) -> int | None:
        """Units the sale can still sell: every shard's stock plus units in transfer; None when
        Redis holds no stock key for the sale (not loaded, or closed)."""
        shards = await self.count(sale_id)
        # One GET per shard: the shards are in different slots, where MGET is refused.
        stocks = [await self._redis.get(k.stock)
                  for k in self._keys.sale_shards(sale_id, shards)]
        if all(s is None for s in stocks):
            return None
        total = sum(int(s or 0) for s in stocks)
        if shards > 1:
            total += await self.in_transfer(sale_id, shards)
        return total
