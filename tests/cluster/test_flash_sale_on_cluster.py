"""The flash-sale scripts on a real three-master Redis Cluster: every key of one call in one
slot, sales spread over the nodes, and the invariants (no oversell, per-user limit, one outbox
entry per accepted order, units returned once) under concurrency."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from checkout.reservation import Reservation
from coupons.keys import CouponKeys
from mall.keys import RELAY_GROUP, Keys, make_order_id
from mall.lua import Script
from seckill.admission import LimitKeys
from tests.cluster.conftest import IN_FLIGHT
from tests.stack import unique_namespace

ACCEPTED, REPLAY, SOLD_OUT, LIMIT_REACHED = 0, 1, 2, 3
GENEROUS = (1_000_000, 1_000_000, 1_000_000)
SALES = 3
STOCK = 120
LIMIT = 2
USERS = 300
CLICKS_PER_USER = 3


def slots(keys: list[str]) -> set[int]:
    return {key_slot(k.encode()) for k in keys}


def admission_call(keys: Keys, sale_id: int, user: str, idem: str | None = None
                   ) -> tuple[list[str], list[object]]:
    sale = keys.sale(sale_id)
    limits = LimitKeys(sale)
    order_id = make_order_id(sale_id, uuid.uuid4().hex)
    script_keys = sale.admission(user, idem, order_id) + [
        limits.user(user), limits.ip("10.0.0.1"), limits.sale, limits.nonce(None)]
    args: list[object] = [user, 1, order_id, "qty=1" if idem else "", 60, 60_000, *GENEROUS,
                          "", 30_000]
    return script_keys, args


def test_every_call_of_a_sale_stays_in_one_slot() -> None:
    keys = Keys(unique_namespace("c"))
    for sale_id in (1, 42, 10**12):
        sale = keys.sale(sale_id)
        script_keys, _ = admission_call(keys, sale_id, "u1", "click-1")
        assert len(slots(script_keys + sale.init() + sale.release("o1"))) == 1
    core = keys.checkout
    assert len(slots([core.outbox, core.idempotency("u", "k"), core.order_view("o"),
                      core.coupon_uses(7), core.points_reserved("u")])) == 1
    template = CouponKeys(keys.namespace).template(9)
    assert len(slots([template.meta, template.issued, template.holders])) == 1
    # Regular checkout reserves SKUs of several slots in one script: on a cluster it needs a
    # reservation per slot with compensation, which this script alone cannot do.
    reservation = Reservation("u", "co-1", b"{}", 60, [(1, 1), (2, 1)])
    assert len(slots(reservation.call(keys)[0])) > 1


async def test_flash_sales_keep_their_invariants_on_the_cluster(cluster: RedisCluster) -> None:
    keys = Keys(unique_namespace("c"))
    init, admit, release = (Script(cluster, name) for name in ("init_sale", "admit", "release"))
    # sales whose hash tags land on different masters
    nodes: dict[str, int] = {}
    candidate = 1
    while len(nodes) < SALES:
        node = cluster.get_node_from_key(keys.sale(candidate).meta).name
        nodes.setdefault(node, candidate)
        candidate += 1
    sale_ids = sorted(nodes.values())
    starts = int((time.time() - 10) * 1000)
    for sale_id in sale_ids:
        await init(keys.sale(sale_id).init(),
                   [sale_id, 77, 500, starts, starts + 3_600_000, LIMIT, STOCK, RELAY_GROUP, 0])

    rng = random.Random(7)
    clicks = [(sale_id, f"u{u}", f"k{u}-{c}" if c else None)
              for sale_id in sale_ids for u in range(USERS) for c in range(CLICKS_PER_USER)]
    rng.shuffle(clicks)

    gate = asyncio.Semaphore(IN_FLIGHT)

    async def click(sale_id: int, user: str, idem: str | None) -> tuple[int, str, int, str]:
        async with gate:
            reply = await admit(*admission_call(keys, sale_id, user, idem))
        order = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        return sale_id, user, int(reply[0]), order

    results = await asyncio.gather(*(click(*c) for c in clicks))

    for sale_id in sale_ids:
        sale = keys.sale(sale_id)
        mine = [r for r in results if r[0] == sale_id]
        codes = Counter(code for _, _, code, _ in mine)
        assert set(codes) <= {ACCEPTED, SOLD_OUT, LIMIT_REACHED}, codes
        accepted = [(user, order) for _, user, code, order in mine if code == ACCEPTED]
        assert len(accepted) == STOCK, "oversold or undersold"
        per_user = Counter(user for user, _ in accepted)
        assert max(per_user.values()) <= LIMIT
        assert int(await cluster.get(sale.stock)) == 0
        entries = await cluster.xrange(sale.outbox)
        queued = [orjson.loads(fields[b"o"])["order_id"] for _, fields in entries]
        assert sorted(queued) == sorted(order for _, order in accepted)
        buyers = {k.decode(): int(v) for k, v in (await cluster.hgetall(sale.buyers)).items()}
        assert buyers == dict(per_user)

    # a cancelled order's unit goes back once, on whichever master holds the sale
    sale_id = sale_ids[-1]
    user, order_id = next((u, o) for s, u, c, o in results if s == sale_id and c == ACCEPTED)
    release_keys = keys.sale(sale_id).release(order_id)
    assert [int(x) for x in await release(release_keys, [user, 1, 60])] == [1, 1]
    assert [int(x) for x in await release(release_keys, [user, 1, 60])] == [0, 1]
    assert int(await cluster.hget(keys.sale(sale_id).buyers, user) or 0) == per_user_after(
        results, sale_id, user) - 1


def per_user_after(results: list[tuple[int, str, int, str]], sale_id: int, user: str) -> int:
    return sum(1 for s, u, c, _ in results if s == sale_id and u == user and c == ACCEPTED)
