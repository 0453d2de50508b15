"""Comparing the sellable state in Redis with PostgreSQL, and rebuilding Redis from it.

PostgreSQL is the source of truth. For a flash sale Redis should hold

    remaining = stock - sold - returned_to_sku - in flight - returns not yet applied

where "in flight" are the units of accepted orders still in the sale's outbox stream (read
exactly) or on their way through RabbitMQ and the writer (not readable without consuming), and
a closed sale's units already moved to its `to_sku` counter but not yet to PostgreSQL count on
the Redis side. A checkout SKU's stock key should hold `skus.stock - skus.sold - in flight -
returns not yet applied` (units given back in PostgreSQL whose way into the key was cut short
are counted missing, and the repair finishes them; a flash sale's units left `skus.stock` when
it was created), and each
sale's buyers hash the units of every order of the user that still holds them.

A comparison is exact only on a settled system: nothing waiting on the orders queue, no order
Redis accepted that is past its outbox and not yet in PostgreSQL (held by a writer, say: see
mall/settled.py), and nothing moving in Redis or PostgreSQL for a moment. A check that finds
the system busy says so instead of guessing, and a repair then refuses to run unless forced.
A repair writes each sale or SKU under WATCH and only while its outbox still shows the mark the
settled check saw; an order accepted or relayed since makes the repair start over from a new
check, and give up when that keeps happening.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import asyncpg
import orjson
from aio_pika.exceptions import ChannelClosed, ChannelNotFoundEntity
from redis.asyncio import Redis
from redis.exceptions import ResponseError, WatchError

from coupons.keys import CouponKeys
from coupons.state import ClaimState
from mall.keys import RELAY_GROUP, Keys
from mall.settings import Settings
from mall.settled import (
    EMPTY_MARK,
    Mark,
    RepairRaced,
    outbox_marks,
    unpersisted_orders,
    watched_mark,
)
from mall.topology import Topology
from seckill.shards import ShardedStock

MAX_LISTED_BUYERS = 20
MAX_LISTED_ORDERS = 10
OUTBOX_PAGE = 1000
REPAIR_ATTEMPTS = 20
RACED_ATTEMPTS = 3  # checks and repairs in a row that an order arriving or leaving may cut short

SALES = """
SELECT id, sku_id, price, stock, sold, returned_to_sku, per_user_limit, closed_at, warmed_at,
       requires_token::int AS requires_token, shards,
       least(starts_at, coalesce(closed_at, starts_at)) AS starts_at,
       least(ends_at, coalesce(closed_at, ends_at)) AS ends_at
FROM flash_sales WHERE $1::bigint IS NULL OR id = $1 ORDER BY id
"""
SHARDS_OF_SALE = "SELECT shards FROM flash_sales WHERE id = $1"
HOLDERS = """
SELECT o.sale_id, o.user_id, sum(i.qty)::bigint AS units
FROM orders o JOIN order_items i USING (order_id)
WHERE o.sale_id = ANY($1::bigint[])
  AND NOT EXISTS (SELECT 1 FROM stock_returns r WHERE r.order_id = o.order_id)
GROUP BY o.sale_id, o.user_id
"""
UNAPPLIED_RETURNS = """
SELECT r.order_id, r.sale_id, r.user_id,
       array_agg(i.sku_id ORDER BY i.sku_id) AS sku_ids,
       array_agg(i.qty ORDER BY i.sku_id) AS qtys
FROM stock_returns r JOIN stock_return_items i USING (order_id)
WHERE r.applied_at IS NULL
GROUP BY r.order_id, r.sale_id, r.user_id
"""
SKUS = "SELECT id, stock, sold FROM skus ORDER BY id"
TEMPLATES = """
SELECT id, claim_starts_at, claim_ends_at, total, per_user, status FROM coupon_templates
ORDER BY id
"""
ISSUED = """
SELECT template_id, sum(held)::bigint AS issued FROM (
    SELECT template_id, user_id, max(seq) AS held FROM user_coupons GROUP BY 1, 2) h
GROUP BY template_id
"""
USED_COUPONS = "SELECT id, returned_count FROM user_coupons WHERE state = 'used'"
# Moves whenever the writer commits, a return is recorded or applied, or a sale settles.
FINGERPRINT = """
SELECT (SELECT count(*) FROM orders), (SELECT coalesce(sum(sold), 0) FROM flash_sales),
       (SELECT coalesce(sum(returned_to_sku), 0) FROM flash_sales),
       (SELECT coalesce(sum(sold), 0) FROM skus), (SELECT coalesce(sum(stock), 0) FROM skus),
       (SELECT count(*) FROM stock_returns WHERE applied_at IS NULL)
"""


@dataclass
class SaleCheck:
    sale_id: int
    sku_id: int
    state: str  # not_loaded, live, closed
    meta_present: bool
    redis_remaining: int | None
    expected_remaining: int
    in_flight_units: int
    unapplied_return_units: int
    buyers_checked: int = 0
    buyers_wrong: int = 0
    buyers_examples: dict[str, list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def drift_units(self) -> int:
        if self.redis_remaining is None:
            return 0 if self.state == "not_loaded" else -self.expected_remaining
        return self.redis_remaining - self.expected_remaining

    @property
    def drifted(self) -> bool:
        return bool(self.problems)


@dataclass
class SkuCheck:
    sku_id: int
    redis_stock: int | None
    expected: int
    in_flight_units: int
    problems: list[str] = field(default_factory=list)


@dataclass
class CouponCheck:
    template_id: int
    redis_issued: int | None
    pg_issued: int
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    settled: bool = True
    not_settled_because: list[str] = field(default_factory=list)
    queue_messages: int = 0
    dead_letters: int = 0
    # accepted orders in no outbox and not in PostgreSQL (counted when the comparison drifts)
    unpersisted_orders: int = 0
    unpersisted_examples: list[str] = field(default_factory=list)
    # each outbox's (last generated id, length) when the check began; a repair compares
    outbox_marks: dict[str, Mark] = field(default_factory=dict)
    sales: list[SaleCheck] = field(default_factory=list)
    skus: list[SkuCheck] = field(default_factory=list)
    coupons: list[CouponCheck] = field(default_factory=list)
    coupon_uses_wrong: int = 0

    @property
    def drift(self) -> bool:
        return (any(s.problems for s in self.sales) or any(s.problems for s in self.skus)
                or any(c.problems for c in self.coupons) or self.coupon_uses_wrong > 0)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["outbox_marks"]
        out["drift"] = self.drift
        for sale, check in zip(out["sales"], self.sales, strict=True):
            sale["drift_units"] = check.drift_units
        return out

    def lines(self) -> list[str]:
        """A human-readable summary, one finding a line."""
        out = [f"settled: {'yes' if self.settled else 'no'}"
               + ("" if self.settled else f" ({'; '.join(self.not_settled_because)})")]
        if self.dead_letters:
            out.append(f"dead-lettered messages (orders never persisted): {self.dead_letters}")
        if self.unpersisted_examples:
            out.append("accepted, past the outbox, not persisted: "
                       + ", ".join(self.unpersisted_examples)
                       + (" ..." if self.unpersisted_orders > len(self.unpersisted_examples)
                          else ""))
        for s in self.sales:
            verdict = "; ".join(s.problems) if s.problems else "ok"
            out.append(
                f"flash sale {s.sale_id} [{s.state}]: redis={s.redis_remaining} "
                f"expected={s.expected_remaining} in_flight={s.in_flight_units} "
                f"unapplied_returns={s.unapplied_return_units} buyers={s.buyers_checked} "
                f"-> {verdict}")
        for k in self.skus:
            if k.problems:
                out.append(f"sku {k.sku_id}: redis={k.redis_stock} expected={k.expected} "
                           f"in_flight={k.in_flight_units} -> {'; '.join(k.problems)}")
        for c in self.coupons:
            if c.problems:
                out.append(f"coupon template {c.template_id}: redis issued={c.redis_issued} "
                           f"postgres issued={c.pg_issued} -> {'; '.join(c.problems)}")
        if self.coupon_uses_wrong:
            out.append(f"used coupons that look unused in Redis: {self.coupon_uses_wrong}")
        bad_skus = sum(1 for k in self.skus if k.problems)
        out.append(f"{len(self.sales)} sale(s), {len(self.skus)} SKU(s) ({bad_skus} drifted), "
                   f"{len(self.coupons)} coupon template(s): "
                   + ("drift" if self.drift else "no drift"))
        return out


@dataclass
class _InFlight:
    """Units of accepted orders still in the outbox streams, read exactly."""

    sale_units: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sale_buyers: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    sku_units: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    order_ids: set[str] = field(default_factory=set)


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _unsettled_reasons(report: Report, moved: bool) -> list[str]:
    reasons = []
    if report.queue_messages:
        reasons.append(f"{report.queue_messages} message(s) on the orders queue not yet persisted")
    if report.unpersisted_orders:
        reasons.append(f"{report.unpersisted_orders} accepted order(s) past the outbox and not in "
                       "PostgreSQL (on the orders queue, held unacknowledged by a writer, or "
                       "dead-lettered)")
    if report.dead_letters:
        reasons.append(f"{report.dead_letters} dead-lettered message(s) need a person")
    if moved:
        reasons.append("orders or stock moved during the check")
    return reasons


def _compare_buyers(check: SaleCheck, buyers: dict[str, int],
                    expected: dict[str, int]) -> None:
    users = set(buyers) | set(expected)
    check.buyers_checked = len(users)
    for user in sorted(users):
        have, want = buyers.get(user, 0), expected.get(user, 0)
        if have != want:
            check.buyers_wrong += 1
            if len(check.buyers_examples) < MAX_LISTED_BUYERS:
                check.buyers_examples[user] = [have, want]
    if check.buyers_wrong:
        check.problems.append(f"{check.buyers_wrong} buyer count(s) differ")


class Reconciler:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, settings: Settings) -> None:
        self._pool = pool
        self._redis = redis
        self._settings = settings
        self._keys = Keys(settings.namespace)
        self._shards = ShardedStock(redis, self._keys)
        self._coupon_keys = CouponKeys(settings.namespace)
        self._topology = Topology.for_namespace(settings.namespace)
        self._marks: dict[str, Mark] | None = None  # what a repair requires of each outbox

    # ---- settledness

    async def fingerprint(self, sale_ids: list[int],
                          ) -> tuple[tuple[Any, ...], tuple[Any, ...], dict[str, Mark]]:
        """What moves while orders travel: PostgreSQL counters, Redis stocks, and each outbox's
        mark (it moves with every order accepted into it or relayed out of it)."""
        row = await self._pool.fetchrow(FINGERPRINT)
        stocks = (await self._redis.mget([self._keys.sale(s).stock for s in sale_ids])
                  if sale_ids else [])
        marks = await outbox_marks(self._redis, await self._streams(sale_ids))
        return tuple(row), tuple(stocks), marks

    async def queue_depths(self) -> tuple[int, int]:
        """Messages ready on the orders queue and on the dead-letter queue (0 if undeclared)."""
        connection = await aio_pika.connect(self._settings.amqp_url, timeout=10)
        depths = []
        async with connection:
            for name in (self._topology.orders_queue, self._topology.dead_queue):
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                    depths.append(int(queue.declaration_result.message_count or 0))
                except (ChannelNotFoundEntity, ChannelClosed):
                    depths.append(0)
                finally:
                    with contextlib.suppress(Exception):
                        await channel.close()
        return depths[0], depths[1]

    async def _streams(self, sale_ids: list[int]) -> list[str]:
        members = await self._redis.smembers(self._keys.outbox_registry)
        streams = {m.decode() if isinstance(m, bytes) else m for m in members}
        streams.add(self._keys.checkout.outbox)
        streams.update(self._keys.sale(s).outbox for s in sale_ids)
        return sorted(streams)

    # ---- the check

    async def check(self, sale_id: int | None = None, quiet_s: float = 1.0,
                    with_skus: bool = True) -> Report:
        """Compare Redis with PostgreSQL. Settled when the orders queue is empty, no accepted
        order is past its outbox and not persisted (looked for when the comparison drifts:
        otherwise there is nothing to repair), and nothing moved in PostgreSQL or Redis
        between the start and `quiet_s` after the comparison."""
        sales = await self._pool.fetch(SALES, sale_id)
        sale_ids = [r["id"] for r in sales]
        before = await self.fingerprint(sale_ids)
        report = Report(outbox_marks=before[2])
        in_flight = await self._in_flight(sorted(report.outbox_marks))
        unapplied = await self._unapplied_returns()
        report.sales = await self._check_sales(sales, in_flight, unapplied)
        if with_skus and sale_id is None:
            report.skus = await self._check_skus(in_flight, unapplied)
            report.coupons, report.coupon_uses_wrong = await self._check_coupons()
        report.queue_messages, report.dead_letters = await self.queue_depths()
        if report.drift:
            missing = await unpersisted_orders(self._redis, self._pool, self._keys,
                                               in_flight.order_ids, sale_id)
            report.unpersisted_orders = len(missing)
            report.unpersisted_examples = missing[:MAX_LISTED_ORDERS]
        if quiet_s > 0:
            await asyncio.sleep(quiet_s)
        after = await self.fingerprint(sale_ids)
        report.not_settled_because = _unsettled_reasons(report, moved=before != after)
        report.settled = not report.not_settled_because
        return report

    async def _in_flight(self, streams: list[str]) -> _InFlight:
        found = _InFlight()
        for stream in streams:
            start = "-"
            while True:
                entries = await self._redis.xrange(stream, start, "+", count=OUTBOX_PAGE)
                for _, fields in entries:
                    if b"o" in fields:
                        self._count_order(orjson.loads(fields[b"o"]), found)
                if len(entries) < OUTBOX_PAGE:
                    break
                start = "(" + entries[-1][0].decode()
        return found

    @staticmethod
    def _count_order(order: dict[str, Any], found: _InFlight) -> None:
        found.order_ids.add(str(order.get("order_id")))
        sale_id = order.get("sale_id")
        if sale_id is not None:
            qty = int(order.get("qty") or sum(i["qty"] for i in order.get("items") or []))
            found.sale_units[int(sale_id)] += qty
            found.sale_buyers[int(sale_id)][order["user_id"]] += qty
            return
        for item in order.get("items") or []:
            found.sku_units[int(item["sku_id"])] += int(item["qty"])

    async def _unapplied_returns(self) -> list[asyncpg.Record]:
        """Returns recorded in PostgreSQL whose units Redis has not got back yet (the per-order
        marker of release.lua / release_skus.lua is absent)."""
        rows = await self._pool.fetch(UNAPPLIED_RETURNS)
        if not rows:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for r in rows:
                marker = (self._keys.release_of(r["sale_id"], r["order_id"])[2]
                          if r["sale_id"] is not None
                          else self._keys.checkout.released(r["order_id"]))
                pipe.exists(marker)
            applied = await pipe.execute()
        return [r for r, done in zip(rows, applied, strict=True) if not done]

    async def _check_sales(self, sales: list[asyncpg.Record], in_flight: _InFlight,
                           unapplied: list[asyncpg.Record]) -> list[SaleCheck]:
        sale_ids = [r["id"] for r in sales]
        holders: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for h in await self._pool.fetch(HOLDERS, sale_ids):
            holders[h["sale_id"]][h["user_id"]] += h["units"]
        returning: dict[int, int] = defaultdict(int)
        for r in unapplied:
            if r["sale_id"] is not None:
                returning[r["sale_id"]] += sum(r["qtys"])
                holders[r["sale_id"]][r["user_id"]] += sum(r["qtys"])
        checks = []
        for row in sales:
            meta, stock, buyers = await self._sale_state(row["id"], row["shards"])
            expected_buyers = {u: n for u, n in holders[row["id"]].items() if n > 0}
            for user, units in in_flight.sale_buyers[row["id"]].items():
                expected_buyers[user] = expected_buyers.get(user, 0) + units
            checks.append(self._compare_sale(row, meta, stock, buyers, expected_buyers,
                                             in_flight.sale_units[row["id"]],
                                             returning[row["id"]]))
        return checks

    async def _sale_state(self, sale_id: int, shards: int,
                          ) -> tuple[dict[str, str], int | None, dict[str, int]]:
        """A sale's meta (shard 0's, with `to_sku` summed over the shards), remaining stock
        (every shard's plus units in transfer between shards) and buyers (each buyer lives in
        one shard, their home)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for k in self._keys.sale_shards(sale_id, shards):
                pipe.hgetall(k.meta)
                pipe.get(k.stock)
                pipe.hgetall(k.buyers)
            replies = await pipe.execute()
        meta = {k.decode(): v.decode() for k, v in replies[0].items()}
        stocks = [_int(s) for s in replies[1::3]]
        buyers: dict[str, int] = {}
        for shard_buyers in replies[2::3]:
            buyers.update({k.decode(): int(v) for k, v in shard_buyers.items()})
        stock = None if all(s is None for s in stocks) else sum(s or 0 for s in stocks)
        if shards > 1:
            if meta:
                to_sku = sum(int(m.get(b"to_sku", 0)) for m in replies[0::3])
                meta["to_sku"] = str(to_sku)
            if stock is not None:
                stock += await self._shards.in_transfer(sale_id, shards)
        return meta, stock, buyers

    @staticmethod
    def _compare_sale(row: asyncpg.Record, meta: dict[str, str], stock: int | None,
                      buyers: dict[str, int], expected_buyers: dict[str, int],
                      in_flight: int, returning: int) -> SaleCheck:
        closed = row["closed_at"] is not None
        loaded = closed or row["warmed_at"] is not None or bool(meta)
        expected = row["stock"] - row["sold"] - row["returned_to_sku"] - in_flight - returning
        check = SaleCheck(
            sale_id=row["id"], sku_id=row["sku_id"],
            state="closed" if closed else ("live" if loaded else "not_loaded"),
            meta_present=bool(meta), redis_remaining=None, expected_remaining=expected,
            in_flight_units=in_flight, unapplied_return_units=returning)
        if not meta:
            if loaded:
                check.problems.append("sale missing from Redis")
            return check
        # Units a closed sale moved to `to_sku` that PostgreSQL has not taken yet.
        moving = int(meta.get("to_sku", 0)) - row["returned_to_sku"] if closed else 0
        check.redis_remaining = (stock or 0) + moving
        if check.redis_remaining != expected:
            check.problems.append(f"remaining off by {check.drift_units:+d}")
        for name, want in (("sku_id", row["sku_id"]), ("price", row["price"]),
                           ("per_user_limit", row["per_user_limit"]),
                           ("stock", row["stock"]),
                           ("requires_token", row["requires_token"])):
            if meta.get(name) != str(want):
                check.problems.append(f"meta {name}={meta.get(name)} (PostgreSQL: {want})")
        if closed and "closed" not in meta:
            check.problems.append("closed in PostgreSQL but open in Redis")
        _compare_buyers(check, buyers, expected_buyers)
        return check

    async def _check_skus(self, in_flight: _InFlight,
                          unapplied: list[asyncpg.Record]) -> list[SkuCheck]:
        rows = await self._pool.fetch(SKUS)
        returning: dict[int, int] = defaultdict(int)
        for r in unapplied:
            if r["sale_id"] is None:
                for sku_id, qty in zip(r["sku_ids"], r["qtys"], strict=True):
                    returning[sku_id] += qty
        values: list[Any] = []
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            # each SKU's stock and held units in one read (one snapshot on one node)
            values += await self._redis.mget([k for r in chunk for k in (
                self._keys.sku_stock(r["id"]), self._keys.sku_held(r["id"]))])
        checks = []
        for i, row in enumerate(rows):
            value, held = values[2 * i], _int(values[2 * i + 1]) or 0
            flying = in_flight.sku_units[row["id"]]
            expected = row["stock"] - row["sold"] - flying - returning[row["id"]]
            check = SkuCheck(row["id"], _int(value), expected, flying)
            if check.redis_stock is None:
                # created from PostgreSQL under the row lock on first use (lua/stock_init.lua):
                # right unless units fly
                if flying:
                    check.problems.append(f"stock key missing while {flying} unit(s) fly")
            elif check.redis_stock != expected:
                # held: given in PostgreSQL and not yet in the key (lua/stock_give.lua); on a
                # settled system that is a give cut short, which the repair finishes
                why = f" ({held} unit(s) held by a give not finished)" if held else ""
                check.problems.append(f"stock off by {check.redis_stock - expected:+d}{why}")
            checks.append(check)
        return checks

    async def _check_coupons(self) -> tuple[list[CouponCheck], int]:
        templates = await self._pool.fetch(TEMPLATES)
        issued = {r["template_id"]: r["issued"] for r in await self._pool.fetch(ISSUED)}
        async with self._redis.pipeline(transaction=False) as pipe:
            for t in templates:
                k = self._coupon_keys.template(t["id"])
                pipe.hget(k.meta, "total")
                pipe.get(k.issued)
            replies = await pipe.execute()
        checks = []
        for i, t in enumerate(templates):
            total, count = replies[2 * i], replies[2 * i + 1]
            check = CouponCheck(t["id"], None if total is None else int(count or 0),
                                issued.get(t["id"], 0))
            # Missing state is loaded on the next claim; Redis may count a claim whose row a
            # crash kept out of PostgreSQL (an under-issue). Fewer in Redis would over-issue.
            if check.redis_issued is not None and check.redis_issued < check.pg_issued:
                check.problems.append("Redis counts fewer coupons than PostgreSQL holds")
            checks.append(check)
        used = await self._pool.fetch(USED_COUPONS)
        counters: list[Any] = []
        for start in range(0, len(used), 1000):
            chunk = used[start:start + 1000]
            counters += await self._redis.mget(
                [self._keys.checkout.coupon_uses(r["id"]) for r in chunk])
        wrong = sum(1 for r, c in zip(used, counters, strict=True)
                    if int(c or 0) <= r["returned_count"])
        return checks, wrong

    # ---- repair

    async def repair(self, report: Report) -> list[str]:
        """Rebuild from PostgreSQL what the report found missing or wrong. Each write is
        checked against a fresh reading under WATCH, so an order admitted meanwhile is never
        overwritten; after a settled check it also needs its outbox to show the mark the check
        saw, or RepairRaced is raised (its `done`: what was repaired before). Returns what was
        done."""
        done: list[str] = []
        self._marks = report.outbox_marks if report.settled else None
        try:
            await self._ensure_checkout_outbox()
            for sale in report.sales:
                if sale.problems:
                    done.append(await self._repair_sale(sale.sale_id))
            for sku in report.skus:
                if sku.problems:
                    done.append(await self._repair_sku(sku.sku_id))
        except RepairRaced as exc:
            exc.done = done
            raise
        if report.coupons:
            done += await self._repair_coupons()
        if report.coupon_uses_wrong:
            done.append(await self._repair_coupon_uses())
        return done

    async def _watch(self, pipe: Any, *keys: str, outbox: str) -> None:
        """WATCH the keys and the outbox. After a settled check, also require the outbox's mark
        the check saw: an order accepted since may have been relayed on to a writer that holds
        it, where neither this repair nor the WATCH would see it."""
        await pipe.watch(*keys, outbox)
        if self._marks is None:
            return
        seen, now = self._marks.get(outbox, EMPTY_MARK), await watched_mark(pipe, outbox)
        if now != seen:
            raise RepairRaced(f"orders were accepted into or relayed out of {outbox} after the "
                              f"check (outbox at {seen[0]}/{seen[1]}, now {now[0]}/{now[1]})")

    async def _ensure_outbox(self, stream: str) -> None:
        await self._redis.sadd(self._keys.outbox_registry, stream)
        try:
            await self._redis.xgroup_create(stream, RELAY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _ensure_checkout_outbox(self) -> None:
        await self._ensure_outbox(self._keys.checkout.outbox)

    async def _repair_sale(self, sale_id: int) -> str:
        if await self._pool.fetchval(SHARDS_OF_SALE, sale_id) not in (None, 1):
            return (f"flash sale {sale_id}: split into shards; not repaired (rebuilding the "
                    "shards is not supported: end the sale to settle it)")
        k = self._keys.sale(sale_id)
        await self._ensure_outbox(k.outbox)
        for _ in range(REPAIR_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await self._watch(pipe, k.meta, k.stock, k.buyers, outbox=k.outbox)
                    row = await self._pool.fetchrow(SALES, sale_id)
                    if row is None:
                        return f"flash sale {sale_id}: not in PostgreSQL, left alone"
                    remaining, buyers = await self._sale_expectation(row)
                    pipe.multi()
                    self._write_sale(pipe, k, row, remaining, buyers)
                    await pipe.execute()
                except WatchError:
                    continue
            return (f"flash sale {sale_id}: rebuilt (remaining {max(remaining, 0)}, "
                    f"{len(buyers)} buyer(s))")
        raise RuntimeError(f"flash sale {sale_id} kept changing; repair it when settled")

    async def _sale_expectation(self, row: asyncpg.Record) -> tuple[int, dict[str, int]]:
        """The remaining stock and the buyers a sale's Redis state should hold."""
        sale_id = row["id"]
        holders: dict[str, int] = defaultdict(int)
        for h in await self._pool.fetch(HOLDERS, [sale_id]):
            holders[h["user_id"]] += h["units"]
        returning = 0
        for r in await self._unapplied_returns():
            if r["sale_id"] == sale_id:
                returning += sum(r["qtys"])
                holders[r["user_id"]] += sum(r["qtys"])
        flying = await self._in_flight([self._keys.sale(sale_id).outbox])
        for user, units in flying.sale_buyers[sale_id].items():
            holders[user] += units
        remaining = (row["stock"] - row["sold"] - row["returned_to_sku"]
                     - flying.sale_units[sale_id] - returning)
        return remaining, {u: n for u, n in holders.items() if n > 0}

    @staticmethod
    def _write_sale(pipe: Any, k: Any, row: asyncpg.Record, remaining: int,
                    buyers: dict[str, int]) -> None:
        meta: dict[str, Any] = {
            "sale_id": row["id"], "sku_id": row["sku_id"], "price": row["price"],
            "starts_at_ms": to_ms(row["starts_at"]), "ends_at_ms": to_ms(row["ends_at"]),
            "per_user_limit": row["per_user_limit"], "stock": row["stock"],
            "requires_token": row["requires_token"],
        }
        closed = row["closed_at"] is not None
        if closed:
            # Units not yet sold stay in the stock key; the upkeep moves them to the SKU.
            meta.update(closed=1, closed_at_ms=to_ms(row["closed_at"]),
                        to_sku=row["returned_to_sku"])
        pipe.delete(k.meta, k.buyers)
        pipe.hset(k.meta, mapping=meta)
        if closed and remaining <= 0:
            pipe.delete(k.stock)
        else:
            pipe.set(k.stock, max(remaining, 0))
        if buyers:
            pipe.hset(k.buyers, mapping=buyers)

    async def _repair_sku(self, sku_id: int) -> str:
        key = self._keys.sku_stock(sku_id)
        outbox = self._keys.checkout.outbox
        for _ in range(REPAIR_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await self._watch(pipe, key, self._keys.sku_held(sku_id), outbox=outbox)
                    row = await self._pool.fetchrow("SELECT stock, sold FROM skus WHERE id = $1",
                                                    sku_id)
                    flying = (await self._in_flight([outbox])).sku_units[sku_id]
                    returning = sum(
                        q for r in await self._unapplied_returns() if r["sale_id"] is None
                        for s, q in zip(r["sku_ids"], r["qtys"], strict=True) if s == sku_id)
                    expected = max(row["stock"] - row["sold"] - flying - returning, 0)
                    pipe.multi()
                    pipe.set(key, expected)
                    # units held are in PostgreSQL's stock already: sellable now, and a late
                    # "apply" finds nothing held (lua/stock_give.lua)
                    pipe.delete(self._keys.sku_held(sku_id))
                    await pipe.execute()
                except WatchError:
                    continue
            return f"sku {sku_id}: stock set to {expected}"
        raise RuntimeError(f"sku {sku_id} kept changing; repair it when settled")

    async def _repair_coupons(self) -> list[str]:
        state = ClaimState(self._redis, self._coupon_keys, self._settings.order_view_ttl_s)
        done = []
        async with self._pool.acquire() as conn:
            for row in await conn.fetch(TEMPLATES):
                if await self._redis.exists(self._coupon_keys.template(row["id"]).meta):
                    continue
                if await state.rebuild(conn, row):
                    done.append(f"coupon template {row['id']}: claim state rebuilt")
        return done

    async def _repair_coupon_uses(self) -> str:
        """A used coupon's counter must show its use, or checkout would take it again."""
        fixed = 0
        for row in await self._pool.fetch(USED_COUPONS):
            key = self._keys.checkout.coupon_uses(row["id"])
            current = int(await self._redis.get(key) or 0)
            if current <= row["returned_count"]:
                await self._redis.set(key, row["returned_count"] + 1)
                fixed += 1
        return f"coupon use counters: {fixed} set"


@dataclass
class Outcome:
    report: Report  # the check the (last) repair acted on
    repaired: list[str] = field(default_factory=list)
    refused: str | None = None
    after: Report | None = None
    raced: list[str] = field(default_factory=list)  # why a repair started over

    @property
    def exit_code(self) -> int:
        """0 no drift, 1 drift (left after a repair), 3 not settled (or repair refused)."""
        if self.refused is not None:
            return NOT_SETTLED
        final = self.after or self.report
        if not final.settled:  # the figures are a guess while orders are in flight
            return NOT_SETTLED
        return DRIFT if final.drift else 0

    def as_json(self) -> dict[str, Any]:
        return {"report": self.report.as_json(), "repaired": self.repaired,
                "refused": self.refused, "raced": self.raced,
                "after": self.after.as_json() if self.after else None,
                "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        out = self.report.lines()
        out += [f"repair started over: {line}" for line in self.raced]
        if self.refused:
            out.append(f"repair refused: {self.refused}")
        if self.repaired:
            out += [f"repaired {line}" for line in self.repaired]
        if self.after is not None:
            out.append("after the repair:")
            out += ["  " + line for line in self.after.lines()]
        return out


DRIFT = 1
NOT_SETTLED = 3


async def reconcile(pool: asyncpg.Pool, redis: Redis, settings: Settings, *,
                    sale_id: int | None = None, repair: bool = False, force: bool = False,
                    quiet_s: float = 1.0) -> Outcome:
    """Check, and with `repair` rebuild Redis from PostgreSQL, then check again. A repair that
    an order arriving at or leaving an outbox cut short starts over from a new check."""
    reconciler = Reconciler(pool, redis, settings)
    outcome = Outcome(await reconciler.check(sale_id, quiet_s))
    if not repair:
        return outcome
    for attempt in range(RACED_ATTEMPTS):
        if attempt:
            outcome.report = await reconciler.check(sale_id, quiet_s)
        if not outcome.report.settled and not force:
            outcome.refused = ("the system is not settled (" +
                               "; ".join(outcome.report.not_settled_because) +
                               "): what is in flight cannot be counted exactly, so a repair "
                               "could offer units PostgreSQL will refuse. Wait for the relay "
                               "and the writer to drain, or pass --force")
            return outcome
        try:
            outcome.repaired += await reconciler.repair(outcome.report)
        except RepairRaced as exc:
            outcome.repaired += exc.done
            outcome.raced.append(str(exc))
            continue
        outcome.after = await reconciler.check(sale_id, quiet_s)
        return outcome
    outcome.refused = (f"orders kept arriving or leaving while repairing ({RACED_ATTEMPTS} "
                       "tries): run it again when the system is quiet")
    return outcome
