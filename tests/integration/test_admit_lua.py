"""lua/admit.lua and lua/init_sale.lua run directly on real Redis: every return code, the rate
limits and the single use of admission tokens."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import orjson
import pytest
from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.keys import RELAY_GROUP, Keys, make_order_id
from mall.lua import Script, read_script
from mall.settings import Settings
from seckill.admission import LimitKeys

(ACCEPTED, REPLAY, SOLD_OUT, LIMIT, NOT_STARTED, ENDED, NO_SALE, REUSED, RATE_LIMITED,
 TOKEN_REQUIRED, TOKEN_INVALID, TOKEN_USED) = range(12)
GENEROUS = (1_000_000, 1_000_000, 1_000_000)
_ids = itertools.count(1_000_000)


class Sale:
    def __init__(self, redis: Redis, keys: Keys, sale_id: int) -> None:
        self.redis = redis
        self.keys = keys
        self.id = sale_id
        self.k = keys.sale(sale_id)
        self.limits = LimitKeys(self.k)
        self.admit_script = Script(redis, "admit")

    def call(self, user: str, qty: int = 1, idem: str | None = None,
             fingerprint: str | None = None, ip: str = "10.0.0.1",
             limits: tuple[int, int, int] = GENEROUS, window_ms: int = 60_000,
             token: str = "", nonce: str | None = None) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of one admit.lua call."""
        order_id = make_order_id(self.id, uuid.uuid4().hex)
        fp = fingerprint if fingerprint is not None else (f"qty={qty}" if idem else "")
        keys = self.k.admission(user, idem, order_id) + [
            self.limits.user(user), self.limits.ip(ip), self.limits.sale,
            self.limits.nonce(nonce)]
        return keys, [user, qty, order_id, fp, 60, window_ms, *limits, token, 30_000]

    async def admit(self, user: str, qty: int = 1, idem: str | None = None,
                    fingerprint: str | None = None, **kw: object) -> tuple[int, str, int]:
        keys, args = self.call(user, qty, idem, fingerprint, **kw)  # type: ignore[arg-type]
        code, oid, remaining, *_ = await self.admit_script(keys, args)
        return int(code), oid.decode(), int(remaining)

    async def outbox(self) -> list[dict[str, object]]:
        entries = await self.redis.xrange(self.k.outbox)
        return [orjson.loads(fields[b"o"]) for _, fields in entries]

    async def remaining(self) -> int:
        return int(await self.redis.get(self.k.stock))


async def make_sale(redis: Redis, settings: Settings, stock: int = 5, limit: int = 1,
                    start_in_s: float = -10, length_s: float = 3600, price: int = 990,
                    requires_token: bool = False) -> Sale:
    keys = Keys(settings.namespace)
    sale = Sale(redis, keys, next(_ids))
    starts = int((time.time() + start_in_s) * 1000)
    await Script(redis, "init_sale")(
        sale.k.init(),
        [sale.id, 77, price, starts, starts + int(length_s * 1000), limit, stock, RELAY_GROUP,
         int(requires_token)],
    )
    return sale


async def test_accepts_and_writes_order_view_and_outbox(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, price=990)
    code, order_id, remaining = await sale.admit("alice", qty=1)
    assert (code, remaining) == (ACCEPTED, 4)
    [order] = await sale.outbox()
    assert order["order_id"] == order_id
    assert order == {
        "order_id": order_id, "user_id": "alice", "sale_id": sale.id, "sku_id": 77, "qty": 1,
        "price": 990, "total": 990, "accepted_at_ms": order["accepted_at_ms"],
    }
    assert abs(int(order["accepted_at_ms"]) - time.time() * 1000) < 5000  # type: ignore[arg-type]
    view = orjson.loads(await redis.get(sale.k.order_view(order_id)))
    assert view == order
    assert int(await redis.hget(sale.k.buyers, "alice")) == 1


async def test_unknown_sale(redis: Redis, settings: Settings) -> None:
    sale = Sale(redis, Keys(settings.namespace), next(_ids))
    assert (await sale.admit("alice"))[0] == NO_SALE
    assert await redis.exists(sale.k.outbox, sale.k.stock, sale.k.buyers) == 0


async def test_not_started_and_ended_change_nothing(redis: Redis, settings: Settings) -> None:
    early = await make_sale(redis, settings, start_in_s=60)
    late = await make_sale(redis, settings, start_in_s=-120, length_s=60)
    assert (await early.admit("alice"))[0] == NOT_STARTED
    assert (await late.admit("alice"))[0] == ENDED
    for sale in (early, late):
        assert await sale.remaining() == 5
        assert await sale.outbox() == []
        assert await redis.hlen(sale.k.buyers) == 0


async def test_sold_out_including_partial_quantity(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=3, limit=10)
    assert (await sale.admit("a", qty=2))[::2] == (ACCEPTED, 1)
    code, _, remaining = await sale.admit("b", qty=2)
    assert (code, remaining) == (SOLD_OUT, 1)
    assert (await sale.admit("b", qty=1))[::2] == (ACCEPTED, 0)
    assert (await sale.admit("c", qty=1))[::2] == (SOLD_OUT, 0)
    assert await sale.remaining() == 0
    assert len(await sale.outbox()) == 2


async def test_duplicate_call_without_key_hits_the_limit(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=10, limit=1)
    assert (await sale.admit("alice"))[0] == ACCEPTED
    assert (await sale.admit("alice"))[0] == LIMIT
    assert await sale.remaining() == 9
    assert len(await sale.outbox()) == 1


async def test_limit_counts_units_not_orders(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=10, limit=3)
    assert (await sale.admit("alice", qty=2))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=2))[0] == LIMIT
    assert (await sale.admit("alice", qty=1))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=1))[0] == LIMIT
    assert int(await redis.hget(sale.k.buyers, "alice")) == 3
    assert await sale.remaining() == 7


async def test_idempotent_replay_returns_first_order(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=1, limit=1)
    code, first, _ = await sale.admit("alice", idem="key-1")
    assert code == ACCEPTED
    # Replayed after the sale sold out: still the first answer, nothing deducted twice.
    for _ in range(3):
        code, again, remaining = await sale.admit("alice", idem="key-1")
        assert (code, again, remaining) == (REPLAY, first, 0)
    assert len(await sale.outbox()) == 1


async def test_same_key_other_body_is_rejected(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=5)
    assert (await sale.admit("alice", qty=1, idem="k"))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=2, idem="k"))[0] == REUSED
    assert await sale.remaining() == 4
    assert len(await sale.outbox()) == 1


async def test_keys_are_per_user(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=1)
    _, a, _ = await sale.admit("alice", idem="same")
    code, b, _ = await sale.admit("bob", idem="same")
    assert code == ACCEPTED and a != b


async def test_init_is_idempotent_and_never_resets_stock(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5)
    await sale.admit("alice")
    starts = int(time.time() * 1000) - 1000
    again = await Script(redis, "init_sale")(
        sale.k.init(), [sale.id, 77, 990, starts, starts + 10_000, 1, 5, RELAY_GROUP]
    )
    assert int(again) == 4
    groups = await redis.xinfo_groups(sale.k.outbox)
    assert [g["name"] for g in groups] == [RELAY_GROUP.encode()]


async def test_keys_of_one_sale_share_a_cluster_slot(settings: Settings) -> None:
    from redis.crc import key_slot

    k = Keys(settings.namespace).sale(42)
    limits = LimitKeys(k)
    keys = k.admission("alice", "idem", make_order_id(42, uuid.uuid4().hex)) + k.init() + [
        limits.user("alice"), limits.ip("::1"), limits.sale, limits.nonce("ab" * 12),
        *limits.token_counters("alice", "::1")]
    assert len({key_slot(key.encode()) for key in keys}) == 1


@pytest.mark.parametrize("stock,users,limit", [(50, 400, 1), (30, 40, 3)])
async def test_concurrent_pipelined_calls_never_oversell(
    redis: Redis, settings: Settings, stock: int, users: int, limit: int
) -> None:
    """Thousands of calls through the pipelining path, many per user, in random order."""
    sale = await make_sale(redis, settings, stock=stock, limit=limit)
    script = ScriptPipe(settings.redis_url, read_script("admit"))

    async def attempt(user: str) -> int:
        code, *_ = await script.call(*sale.call(user))
        return int(code)

    calls = [attempt(f"u{i % users}") for i in range(users * 5)]
    codes = await asyncio.gather(*calls)
    await script.aclose()
    assert codes.count(ACCEPTED) == stock
    assert set(codes) <= {ACCEPTED, SOLD_OUT, LIMIT}
    assert await sale.remaining() == 0
    outbox = await sale.outbox()
    assert len(outbox) == stock
    per_user: dict[str, int] = {}
    for order in outbox:
        per_user[str(order["user_id"])] = per_user.get(str(order["user_id"]), 0) + 1
    assert max(per_user.values()) <= limit
    buyers = {k.decode(): int(v) for k, v in (await redis.hgetall(sale.k.buyers)).items()}
    assert buyers == per_user


async def test_release_gives_units_back_once(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=2, limit=2)
    code, order_id, _ = await sale.admit("alice", qty=2)
    assert code == ACCEPTED and await sale.remaining() == 0
    release = Script(redis, "release")
    keys = sale.k.release(order_id)
    assert [int(x) for x in await release(keys, ["alice", 2, 60])] == [1, 2]
    assert [int(x) for x in await release(keys, ["alice", 2, 60])] == [0, 2]
    assert await sale.remaining() == 2
    assert await redis.hget(sale.k.buyers, "alice") is None
    assert (await sale.admit("alice", qty=2))[0] == ACCEPTED  # she may buy again


async def assert_nothing_sold(sale: Sale, stock: int) -> None:
    assert await sale.remaining() == stock
    assert await sale.outbox() == []
    assert await sale.redis.hlen(sale.k.buyers) == 0


@pytest.mark.parametrize("scope,limits,users,ips", [
    ("user", (3, 100, 100), ["u"], ["1.1.1.1", "2.2.2.2"]),
    ("ip", (100, 3, 100), ["a", "b", "c", "d"], ["1.1.1.1"]),
    ("sale", (100, 100, 3), ["a", "b", "c", "d"], ["1.1.1.1", "2.2.2.2"]),
])
async def test_rate_limit_refuses_past_the_limit_and_touches_nothing(
    redis: Redis, settings: Settings, scope: str, limits: tuple[int, int, int],
    users: list[str], ips: list[str],
) -> None:
    """Calls of a not-yet-started sale are counted; the fourth is refused with the wait."""
    sale = await make_sale(redis, settings, stock=5, start_in_s=60)
    codes = []
    for n in range(6):
        keys, args = sale.call(users[n % len(users)], ip=ips[n % len(ips)], limits=limits,
                               window_ms=30_000)
        codes.append(await sale.admit_script(keys, args))
    assert [int(c[0]) for c in codes] == [NOT_STARTED] * 3 + [RATE_LIMITED] * 3
    for reply in codes[3:]:
        assert reply[1].decode() == scope
        assert 25_000 < int(reply[3]) <= 30_000
    await assert_nothing_sold(sale, 5)


async def test_refused_attempts_count_nowhere(redis: Redis, settings: Settings) -> None:
    """A user past their own limit does not use up the IP's or the sale's budget."""
    sale = await make_sale(redis, settings, stock=5, limit=5)
    limits = (2, 3, 100)
    for _ in range(5):
        await sale.admit("greedy", ip="9.9.9.9", limits=limits)
    assert int(await redis.get(sale.limits.ip("9.9.9.9"))) == 2
    assert int(await redis.get(sale.limits.sale)) == 2
    assert (await sale.admit("other", ip="9.9.9.9", limits=limits))[0] == ACCEPTED
    assert await sale.remaining() == 2


async def test_window_ends_and_counting_starts_again(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=5)
    first = [(await sale.admit("w", limits=(2, 100, 100), window_ms=300))[0] for _ in range(3)]
    assert first == [ACCEPTED, ACCEPTED, RATE_LIMITED]
    await asyncio.sleep(0.4)
    assert (await sale.admit("w", limits=(2, 100, 100), window_ms=300))[0] == ACCEPTED
    assert await sale.remaining() == 2


async def test_replay_is_not_limited(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5)
    code, first, _ = await sale.admit("r", idem="k1", limits=(1, 100, 100))
    assert code == ACCEPTED
    assert (await sale.admit("r", idem="k2", limits=(1, 100, 100)))[0] == RATE_LIMITED
    for _ in range(3):
        assert (await sale.admit("r", idem="k1", limits=(1, 100, 100)))[:2] == (REPLAY, first)


async def test_token_rules(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=5, requires_token=True)
    assert (await sale.admit("t"))[0] == TOKEN_REQUIRED
    assert (await sale.admit("t", token="0", nonce=None))[0] == TOKEN_INVALID
    await assert_nothing_sold(sale, 5)
    code, order, _ = await sale.admit("t", idem="buy", token="1", nonce="aa" * 12)
    assert code == ACCEPTED
    assert 0 < await redis.pttl(sale.limits.nonce("aa" * 12)) <= 30_000
    assert (await sale.admit("t", token="1", nonce="aa" * 12))[0] == TOKEN_USED
    # The replay of the accepted key needs no token, even with an unusable one.
    assert (await sale.admit("t", idem="buy"))[:2] == (REPLAY, order)
    assert (await sale.admit("t", idem="buy", token="0"))[:2] == (REPLAY, order)
    assert await sale.remaining() == 4 and len(await sale.outbox()) == 1


async def test_refused_purchase_does_not_burn_the_token(redis: Redis,
                                                        settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=1, limit=1, requires_token=True)
    assert (await sale.admit("x", qty=2, token="1", nonce="bb" * 12))[0] == SOLD_OUT
    assert await redis.exists(sale.limits.nonce("bb" * 12)) == 0
    assert (await sale.admit("x", token="1", nonce="bb" * 12))[0] == ACCEPTED


async def test_tokens_are_ignored_when_not_required(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=5)
    assert (await sale.admit("n", token="0"))[0] == ACCEPTED
    assert (await sale.admit("n", token="1", nonce="cc" * 12))[0] == ACCEPTED
    assert await redis.exists(sale.limits.nonce("cc" * 12)) == 0


async def test_without_limit_keys_a_token_sale_refuses(redis: Redis, settings: Settings) -> None:
    """Older callers (KEYS[1..6] only) are not limited, and cannot buy where a token is due."""
    free = await make_sale(redis, settings, stock=5)
    guarded = await make_sale(redis, settings, stock=5, requires_token=True)
    for sale, expected in ((free, ACCEPTED), (guarded, TOKEN_REQUIRED)):
        order_id = make_order_id(sale.id, uuid.uuid4().hex)
        code, *_ = await sale.admit_script(sale.k.admission("old", None, order_id),
                                           ["old", 1, order_id, "", 60])
        assert int(code) == expected
    await assert_nothing_sold(guarded, 5)


async def test_one_token_sent_twenty_times_at_once_buys_once(redis: Redis,
                                                             settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=50, limit=50, requires_token=True)
    script = ScriptPipe(settings.redis_url, read_script("admit"))
    try:
        replies = await asyncio.gather(*(
            script.call(*sale.call("bot", token="1", nonce="dd" * 12)) for _ in range(20)))
    finally:
        await script.aclose()
    codes = sorted(int(r[0]) for r in replies)
    assert codes == [ACCEPTED] + [TOKEN_USED] * 19
    assert await sale.remaining() == 49 and len(await sale.outbox()) == 1


async def test_concurrent_calls_accept_exactly_the_rate_limit(redis: Redis,
                                                              settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=1000, limit=1000)
    script = ScriptPipe(settings.redis_url, read_script("admit"))
    try:
        replies = await asyncio.gather(*(
            script.call(*sale.call(f"u{n % 7}", limits=(1000, 1000, 25), window_ms=60_000))
            for n in range(200)))
    finally:
        await script.aclose()
    codes = [int(r[0]) for r in replies]
    assert codes.count(ACCEPTED) == 25 and codes.count(RATE_LIMITED) == 175
    assert await sale.remaining() == 975 and len(await sale.outbox()) == 25
