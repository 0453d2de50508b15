"""Pure logic: settings, tokens, keys, sale states. No I/O."""

from __future__ import annotations

import fnmatch
import re
import time

import jwt
import pytest

from mall.auth import TokenVerifier, issue_token
from mall.errors import ApiError
from mall.keys import Keys, make_order_id, parse_sale_order_id, sale_of_order_id
from mall.settings import Settings, mask_dsn
from seckill.campaigns import sale_view
from seckill.relay import pack

SECRET = "s" * 40


def test_settings_read_prefixed_env() -> None:
    s = Settings.from_env({"MALL_NAMESPACE": "shop2", "MALL_RELAY_BATCH": "10",
                           "MALL_RELAY_ENABLED": "false", "MALL_SOLDOUT_REFRESH_S": "0.1",
                           "OTHER": "x"})
    assert (s.namespace, s.relay_batch, s.relay_enabled, s.soldout_refresh_s) == (
        "shop2", 10, False, 0.1)
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/mall"


@pytest.mark.parametrize("env", [
    {"MALL_NAMESPACE": "Bad-Name"},
    {"MALL_NAMESPACE": "a:b"},
    {"MALL_RELAY_BATCH": "many"},
    {"MALL_RELAY_ENABLED": "maybe"},
    {"MALL_JWT_SECRET": "short"},
])
def test_settings_reject_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings.from_env(env)


def test_dsn_password_is_masked() -> None:
    assert mask_dsn("amqp://guest:hunter2@h:5672/") == "amqp://guest:***@h:5672/"
    assert mask_dsn("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "hunter2" not in Settings(amqp_url="amqp://u:hunter2@h/").describe()


def test_token_round_trip_and_cache_rechecks_expiry() -> None:
    verifier = TokenVerifier(SECRET)
    token = issue_token(SECRET, "alice", "member", ttl_s=1)
    principal = verifier.verify(token)
    assert (principal.user_id, principal.role, principal.is_staff) == ("alice", "member", False)
    time.sleep(1.1)
    with pytest.raises(ApiError) as err:
        verifier.verify(token)  # cached, but expired now
    assert err.value.status == 401


@pytest.mark.parametrize("claims", [
    {"sub": "a", "role": "customer"},  # no exp
    {"sub": "a", "exp": 9999999999},  # no role
    {"role": "admin", "exp": 9999999999},  # no sub
    {"sub": "a:b", "role": "customer", "exp": 9999999999},
    {"sub": "a", "role": "root", "exp": 9999999999},
])
def test_tokens_missing_or_bad_claims_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(ApiError):
        TokenVerifier(SECRET).verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_issue_token_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        issue_token(SECRET, "a b", "customer")
    with pytest.raises(ValueError):
        issue_token(SECRET, "a", "god")


def test_order_ids_carry_their_sale() -> None:
    order_id = make_order_id(42, "ab" * 16)
    assert sale_of_order_id(order_id) == 42
    for bad in ["", "fs42", "fs-" + "a" * 32, "fsx-" + "a" * 32, "fs1-zz", "xx1-" + "a" * 32,
                "fs1-" + "g" * 32]:
        assert sale_of_order_id(bad) is None


def test_order_ids_carry_their_shard() -> None:
    hex32 = "cd" * 16
    for sale_id, shard in ((42, 0), (42, 1), (7, 127)):
        order_id = make_order_id(sale_id, hex32, shard)
        assert parse_sale_order_id(order_id) == (sale_id, shard)
        assert Keys("shop").sale_of_order(order_id) == Keys("shop").sale(sale_id, shard)
    assert make_order_id(42, hex32, 0) == f"fs42-{hex32}"
    assert Keys("shop").sale(42, 3).stock == "shop:{fs42.3}:stock"
    assert Keys("shop").sale_from_outbox(Keys("shop").sale(42, 3).outbox) == 42
    for bad in [f"fs42.0-{hex32}", f"fs42.01-{hex32}", f"fs42.-{hex32}", f"fs42.x-{hex32}",
                f"fs42.1000-{hex32}", f"fs.1-{hex32}", f"fs42.1.2-{hex32}"]:
        assert parse_sale_order_id(bad) is None, bad
        assert Keys("shop").order_view_of(bad) is None


def test_queued_order_views_are_found_by_their_key_alone() -> None:
    keys, hex32 = Keys("shop"), "ab" * 16
    views = [keys.sale(9).order_view(make_order_id(9, hex32)),
             keys.sale(9, 2).order_view(make_order_id(9, hex32, 2)),
             keys.checkout.order_view(f"co-{hex32}")]
    pattern = re.compile(fnmatch.translate(keys.order_view_pattern))
    for view in views:
        assert pattern.match(view), view
        order_id = keys.order_of_view(view)
        assert order_id is not None and keys.order_view_of(order_id) == view
    # an Idempotency-Key that looks like a view, another namespace, a view in the wrong slot
    for other in [f"shop:{{fs9}}:idem:u1:x:order:fs9-{hex32}", f"shop2:{{fs9}}:order:fs9-{hex32}",
                  f"shop:x:{{fs9}}:order:fs9-{hex32}", f"shop:{{fs8}}:order:fs9-{hex32}"]:
        assert keys.order_of_view(other) is None, other


def test_keys_are_namespaced() -> None:
    k = Keys("shop").sale(7)
    assert k.stock == "shop:{fs7}:stock"
    assert k.idempotency("u1", "key") == "shop:{fs7}:idem:u1:key"
    assert Keys("shop").sale_from_outbox(k.outbox) == 7


@pytest.mark.parametrize("now,remaining,state", [
    (500, 5, "upcoming"), (1000, 5, "live"), (1500, 0, "sold_out"), (2000, 5, "ended"),
    (2500, 0, "ended"),
])
def test_sale_state(now: int, remaining: int, state: str) -> None:
    view = sale_view(1, 2, 100, 5, remaining, 1, 1000, 2000, now_ms=now)
    assert view["state"] == state
    assert view["starts_at"] == "1970-01-01T00:00:01+00:00"


def test_pack_joins_orders_into_a_json_array() -> None:
    import orjson

    assert orjson.loads(pack([(b"1-0", b'{"a":1}'), (b"2-0", b'{"a":2}')])) == [{"a": 1},
                                                                                 {"a": 2}]
