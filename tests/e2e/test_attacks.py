"""Attacks through the real app on the promotion, membership, pricing, campaign, report, audit
and recommendation routes: injection strings, oversized requests, absurd numbers, other
people's data and forged tokens. Every answer is a documented 2xx/4xx, never a 5xx, and
nothing changes that should not."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient

from coupons.http import PUSH_MAX_BODY_BYTES
from mall.settings import Settings
from tests.e2e.accounts_helpers import bearer, register, unique_phone
from tests.e2e.catalog_helpers import call, new_category, new_product, staff_headers
from tests.e2e.helpers import buy, create_sale, wait_persisted
from tests.e2e.test_payments_api import callback, create_payment, insert_order
from tests.stack import auth, iso, now

INJECTIONS = [
    "' OR 1=1 --",
    "'; DROP TABLE orders; --",
    "1; DELETE FROM users WHERE 1=1",
    "' UNION SELECT password_hash, 1 FROM users --",
    "\x00",
    "a\x00b",
    "%' OR '%'='",
    "\\'; SELECT pg_sleep(5); --",
    "\u202e' OR '1'='1",  # right-to-left override
    "ｓｅｌｅｃｔ ＊ ｆｒｏｍ users",  # fullwidth letters
    "＇ OR 1=1 －－",  # fullwidth quote and dashes
    "$1::text",
    "🙂\"'`",
    "\ud800",  # a lone surrogate
    "9" * 40,
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits: int() reads them
    "-1",
]
TABLES = ("orders", "users", "products", "skus", "coupon_templates", "user_coupons",
          "addresses", "price_lists", "members", "points_ledger", "flash_sales")
# (path, query parameters) of every read that takes text from the query string.
QUERIES: list[tuple[str, tuple[str, ...]]] = [
    ("/api/v1/products", ("q", "category_id", "tag", "min_price", "max_price", "in_stock",
                          "sort", "limit", "cursor")),
    ("/api/v1/admin/audit", ("kind", "actor", "target", "from", "to", "status", "limit",
                             "cursor", "format")),
    ("/api/v1/admin/reports/sales", ("from", "to", "granularity", "group_by", "format")),
    ("/api/v1/admin/reports/searches", ("from", "to", "limit")),
    ("/api/v1/admin/reports/inventory", ("threshold", "category_id", "limit")),
    ("/api/v1/admin/reports/funnel/chart.svg", ("from", "to")),
    ("/api/v1/admin/coupons", ("status", "limit", "cursor")),
    ("/api/v1/coupons", ("limit", "cursor")),
    ("/api/v1/me/coupons", ("state", "limit", "cursor")),
    ("/api/v1/admin/price-lists", ("limit", "cursor")),
    ("/api/v1/admin/flash-sales", ("state", "limit", "cursor")),
    ("/api/v1/flash-sales", ("limit", "cursor")),
    ("/api/v1/me/points", ("limit", "cursor")),
    ("/api/v1/me/recommendations", ("limit",)),
    ("/api/v1/admin/orders", ("status", "user_id", "sale_id", "created_from", "created_to",
                              "limit", "cursor")),
    ("/api/v1/admin/after-sales", ("status", "limit", "cursor")),
    ("/api/v1/orders", ("limit", "cursor")),
    ("/api/v1/admin/products/{product_id}/changes", ("limit", "before")),
    ("/api/v1/products/{product_id}/recommendations", ("limit",)),
]


PATH_INJECTIONS = ["' OR 1=1 --", "1 OR 1=1", "1;DROP TABLE orders", "%00", "a%00b", "%ED%A0%80",
                   "%E2%80%AE1", "²", "fs²-" + "0" * 32, "x" * 300]
PATH_ROUTES = [
    ("GET", "/api/v1/products/{}/recommendations"),
    ("GET", "/api/v1/admin/members/{}"),
    ("POST", "/api/v1/admin/members/{}/points"),
    ("GET", "/api/v1/admin/coupons/{}"),
    ("POST", "/api/v1/coupons/{}/claim"),
    ("GET", "/api/v1/admin/price-lists/{}"),
    ("GET", "/api/v1/admin/flash-sales/{}/report"),
    ("PATCH", "/api/v1/admin/flash-sales/{}"),
    ("GET", "/api/v1/orders/{}"),
    ("GET", "/api/v1/orders/{}/history"),
    ("POST", "/api/v1/orders/{}/cancel"),
    ("POST", "/api/v1/orders/{}/confirm-receipt"),
    ("POST", "/api/v1/orders/{}/after-sales"),
    ("POST", "/api/v1/orders/{}/payments"),
    ("POST", "/api/v1/admin/orders/{}/ship"),
    ("POST", "/api/v1/admin/orders/{}/deliver"),
    ("GET", "/api/v1/payments/{}"),
    ("POST", "/api/v1/admin/after-sales/{}/approve"),
]


async def row_counts(pg: asyncpg.Pool) -> dict[str, int]:
    return {t: int(await pg.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}


def assert_not_5xx(status: int, body: Any, what: str) -> None:
    assert status < 500, f"{what}: {status} {body}"
    if status >= 400:
        assert isinstance(body, dict) and body["error"]["code"], f"{what}: {body}"


async def test_injection_in_query_parameters(client: TestClient, settings: Settings,
                                             pg: asyncpg.Pool) -> None:
    product = await new_product(client, settings)
    before = await row_counts(pg)
    staff = staff_headers(settings)
    server_errors = []
    for template, names in QUERIES:
        path = template.format(product_id=product["id"])
        for name in names:
            for payload in INJECTIONS:
                status, body = await call_raw(client, "GET", path, params={name: payload},
                                              headers=staff)
                if status >= 500:
                    server_errors.append(f"{path}?{name}={payload!r}: {status}")
                assert_not_5xx(min(status, 499), body, f"{path}?{name}={payload!r}")
    assert not server_errors, "\n".join(server_errors)
    # The id-taking routes see the strings in their paths.
    for payload in PATH_INJECTIONS:
        for method, template in PATH_ROUTES:
            path = template.format(payload)
            status, body = await call_raw(client, method, path, headers=staff, json={})
            if status >= 500:
                server_errors.append(f"{method} {path}: {status}")
            assert status in (404, 405, 422), f"{method} {path}: {status} {body}"
    assert not server_errors, "\n".join(server_errors)
    assert await row_counts(pg) == before


async def call_raw(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Like catalog_helpers.call, but a body that is not JSON (CSV, SVG) comes back as text."""
    resp = await client.request(method, path, **kwargs)
    text = await resp.text(errors="replace")
    if resp.content_type == "application/json":
        return resp.status, await resp.json()
    return resp.status, text


async def test_search_treats_injection_as_text(client: TestClient, settings: Settings) -> None:
    marker = uuid.uuid4().hex[:8]
    name = f"Robert'); DROP TABLE products;-- {marker}"
    product = await new_product(client, settings, name=name, tags=["' OR 1=1 --"])
    _, found = await call(client, "GET", "/api/v1/products", 200,
                          params={"q": f"DROP TABLE products;-- {marker}"})
    assert [item["id"] for item in found["items"]] == [product["id"]]
    _, tagged = await call(client, "GET", "/api/v1/products", 200, params={"tag": "' OR 1=1 --"})
    assert {item["id"] for item in tagged["items"]} == {product["id"]}
    _, everything = await call(client, "GET", "/api/v1/products", 200,
                               params={"q": "' OR 1=1 --", "limit": "100"})
    assert product["id"] not in {item["id"] for item in everything["items"]}


TEXT_FIELDS = [
    ("POST", "/api/v1/admin/categories", lambda s: {"name": s}),
    ("POST", "/api/v1/admin/products",
     lambda s: {"name": s, "description": s, "tags": [s], "skus": [
         {"price": 100, "stock": 1, "attributes": {"colour": s}}]}),
    ("POST", "/api/v1/admin/coupons", lambda s: coupon_body(name=s)),
    ("POST", "/api/v1/admin/price-lists", lambda s: {
        "name": s, "starts_at": iso(now() + timedelta(days=1)),
        "ends_at": iso(now() + timedelta(days=2)), "items": [{"sku_id": 1, "price": 1}]}),
]


def coupon_body(**changes: Any) -> dict[str, Any]:
    start = now()
    body: dict[str, Any] = {
        "name": "满100减20", "kind": "threshold", "threshold": 10000, "amount": 2000,
        "claim_starts_at": iso(start - timedelta(seconds=5)),
        "claim_ends_at": iso(start + timedelta(hours=1)),
        "valid_from": iso(start - timedelta(seconds=5)),
        "valid_until": iso(start + timedelta(days=7)), "total": 10, "per_user": 1}
    body.update(changes)
    return body


@pytest.mark.parametrize("payload", INJECTIONS, ids=range(len(INJECTIONS)))
async def test_injection_in_text_fields_is_stored_verbatim_or_refused(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, payload: str) -> None:
    customer = await register(client, phone=unique_phone())
    me = bearer(customer["tokens"]["access_token"])
    before = await row_counts(pg)
    for method, path, body in TEXT_FIELDS:
        status, answer = await call_raw(client, method, path, json=body(payload),
                                        headers=staff_headers(settings))
        assert_not_5xx(status, answer, f"{path} {payload!r}")
        if status == 201 and "name" in answer:
            assert answer["name"] == payload
    address = {"recipient": payload, "phone": "13912345678", "province": payload,
               "city": payload, "district": payload, "line": payload, "postal_code": payload}
    for method, path, body in (("POST", "/api/v1/me/addresses", address),
                               ("PATCH", "/api/v1/me", {"nickname": payload})):
        status, answer = await call_raw(client, method, path, json=body, headers=me)
        assert_not_5xx(status, answer, f"{path} {payload!r}")
    if "\x00" in payload:  # PostgreSQL text cannot hold NUL: refused before any write
        assert await row_counts(pg) == before
    for table in TABLES:
        assert await pg.fetchval("SELECT to_regclass($1) IS NOT NULL", table)


OVERSIZED = [
    ("POST", "/api/v1/admin/coupons"),
    ("POST", "/api/v1/admin/price-lists"),
    ("PUT", "/api/v1/admin/member-levels"),
    ("POST", "/api/v1/admin/members/someone/points"),
    ("PATCH", "/api/v1/admin/flash-sales/1"),
    ("POST", "/api/v1/checkout"),
    ("POST", "/api/v1/cart/items"),
    ("POST", "/api/v1/me/addresses"),
    ("POST", "/api/v1/admin/coupons/1/push"),
]


async def test_oversized_bodies_are_413(client: TestClient, settings: Settings,
                                        pg: asyncpg.Pool) -> None:
    before = await row_counts(pg)
    for method, path in OVERSIZED:
        # Pushes take more than the mall-wide limit (10,000 user ids), and have their own.
        limit = PUSH_MAX_BODY_BYTES if path.endswith("/push") else settings.max_body_bytes
        body = b'{"name": "' + b"x" * (limit + 1) + b'"}'
        resp = await client.request(method, path, data=body, headers={
            **staff_headers(settings), "Content-Type": "application/json"})
        assert resp.status == 413, f"{method} {path}: {resp.status}"
        assert (await resp.json())["error"]["code"] == "payload_too_large"
    assert await row_counts(pg) == before


async def test_oversized_headers_are_refused(client: TestClient, settings: Settings) -> None:
    for headers in ({"X-Junk": "a" * 20_000},
                    {"Authorization": "Bearer " + "a" * 20_000},
                    {f"X-Many-{i}": "v" * 100 for i in range(300)}):
        resp = await client.get("/api/v1/admin/reports/sales", headers=headers)
        assert resp.status in (400, 431), resp.status
    resp = await client.get("/api/v1/admin/reports/sales?" + "a=b&" * 5000,
                            headers=staff_headers(settings))
    assert resp.status in (400, 414, 422), resp.status
    resp = await client.get("/livez")
    assert resp.status == 200


HUGE = 10**20


async def absurd_numbers(client: TestClient, settings: Settings) -> list[tuple[str, str, dict]]:
    product = await new_product(client, settings)
    sku = product["skus"][0]["id"]
    sale = await create_sale(client, settings, stock=2, start_in_s=3600)
    item = {"sku_id": sku, "qty": 1}
    return [
        ("POST", "/api/v1/cart/items", {"sku_id": sku, "qty": q}) for q in (-1, 0, 100, HUGE)
    ] + [
        ("PUT", f"/api/v1/cart/items/{sku}", {"qty": q}) for q in (-5, HUGE)
    ] + [
        ("POST", "/api/v1/checkout", {"items": [{"sku_id": sku, "qty": q}]})
        for q in (-1, 0, HUGE)
    ] + [
        ("POST", "/api/v1/checkout", {"items": [item], "points": p}) for p in (-1, HUGE)
    ] + [
        ("POST", "/api/v1/checkout", {"items": [item], "coupons": [-1]}),
        ("POST", "/api/v1/admin/coupons", coupon_body(amount=-2000)),
        ("POST", "/api/v1/admin/coupons", coupon_body(threshold=HUGE)),
        ("POST", "/api/v1/admin/coupons", coupon_body(total=-1)),
        ("POST", "/api/v1/admin/coupons", coupon_body(per_user=0)),
        ("POST", "/api/v1/admin/coupons", coupon_body(kind="percent", percent_off=150,
                                                      max_discount=100)),
    ] + [
        ("POST", "/api/v1/admin/price-lists", {
            "name": "n", "starts_at": iso(now() + timedelta(days=1)),
            "ends_at": iso(now() + timedelta(days=2)), "items": [{"sku_id": sku, "price": p}]})
        for p in (-1, 0, HUGE)
    ] + [
        ("PATCH", f"/api/v1/admin/skus/{sku}", body)
        for body in ({"price": -1}, {"stock": -5}, {"member_price": -1}, {"price": HUGE},
                     {"member_price": 10**9})
    ] + [
        ("PATCH", f"/api/v1/admin/flash-sales/{sale['id']}", body)
        for body in ({"price": -1}, {"stock": -1}, {"per_user_limit": -1}, {"stock": HUGE})
    ] + [
        ("POST", "/api/v1/admin/members/someone/points", {"delta": d, "note": "n"})
        for d in (HUGE, -HUGE, 0)
    ] + [
        ("PUT", "/api/v1/admin/member-levels", {"levels": [{"level": 0, "name": "a",
                                                            "min_spent": -1}]}),
        ("POST", f"/api/v1/flash-sales/{sale['id']}/orders", {"qty": HUGE}),
    ]


async def test_negative_and_huge_numbers_are_422(client: TestClient, settings: Settings,
                                                 pg: asyncpg.Pool) -> None:
    cases = await absurd_numbers(client, settings)
    before = await row_counts(pg)
    buyer = auth(settings, f"absurd-{uuid.uuid4().hex[:8]}")
    for method, path, body in cases:
        headers = staff_headers(settings) if "/admin/" in path else buyer
        status, answer = await call_raw(client, method, path, json=body, headers=headers)
        assert status == 422, f"{method} {path} {body}: {status} {answer}"
    assert await row_counts(pg) == before
    _, cart = await call(client, "GET", "/api/v1/cart", 200, headers=buyer)
    assert cart["items"] == []


async def test_nobody_uses_or_reads_another_users_promotions_and_orders(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    thief = f"thief-{uuid.uuid4().hex[:8]}"
    theirs, mine = auth(settings, victim), auth(settings, thief)
    product = await new_product(client, settings, skus=[{"price": 20000, "stock": 20}])
    sku = product["skus"][0]["id"]
    _, template = await call(client, "POST", "/api/v1/admin/coupons", 201,
                             headers=staff_headers(settings),
                             json=coupon_body(threshold=0, kind="fixed", amount=500, total=5))
    _, coupon = await call(client, "POST", f"/api/v1/coupons/{template['id']}/claim", 201,
                           headers={**theirs, "Idempotency-Key": "claim-1"})
    await call(client, "POST", f"/api/v1/admin/members/{victim}/points", 201,
               headers=staff_headers(settings), json={"delta": 1000, "note": "gift"})
    sale = await create_sale(client, settings, stock=3)
    _, accepted = await buy(client, settings, sale["id"], victim)
    order = await wait_persisted(client, settings, victim, accepted["order_id"])

    # The thief's checkout with the victim's coupon, through the cart and with items.
    await call(client, "POST", "/api/v1/cart/items", 200, headers=mine,
               json={"sku_id": sku, "qty": 1})
    for extra in ({}, {"items": [{"sku_id": sku, "qty": 1}]}):
        status, body = await call(client, "POST", "/api/v1/checkout", headers=mine,
                                  json={**extra, "delivery": "pickup", "coupons": [coupon["id"]]})
        assert (status, body["error"]["code"]) == (422, "coupon_invalid")
        status, body = await call(client, "POST", "/api/v1/checkout", headers=mine,
                                  json={**extra, "delivery": "pickup", "points": 100})
        assert (status, body["error"]["code"]) == (409, "points_insufficient")
    # The same Idempotency-Key gives the thief a claim of their own, not the victim's coupon.
    status, own = await call(client, "POST", f"/api/v1/coupons/{template['id']}/claim",
                             headers={**mine, "Idempotency-Key": "claim-1"})
    assert status == 201 and own["id"] != coupon["id"]
    _, wallet = await call(client, "GET", "/api/v1/me/coupons", 200, headers=mine)
    assert coupon["id"] not in {c["id"] for c in wallet["items"]}

    order_id = order["order_id"]
    for method, path, body in (
            ("GET", f"/api/v1/orders/{order_id}/history", None),
            ("POST", f"/api/v1/orders/{order_id}/cancel", None),
            ("POST", f"/api/v1/orders/{order_id}/confirm-receipt", None),
            ("POST", f"/api/v1/orders/{order_id}/after-sales",
             {"type": "refund", "reason": "x", "photo_urls": []}),
            ("POST", f"/api/v1/orders/{order_id}/payments", {"provider": "sandbox"})):
        status, _ = await call(client, method, path, headers=mine, json=body)
        assert status == 404, f"{method} {path}"
    for method, path, body in (
            ("GET", f"/api/v1/admin/members/{victim}", None),
            ("POST", f"/api/v1/admin/members/{thief}/points", {"delta": 10**6, "note": "mine"}),
            ("POST", f"/api/v1/admin/members/{victim}/points", {"delta": -1000, "note": "x"}),
            ("POST", f"/api/v1/admin/coupons/{template['id']}/push", {"user_ids": [thief]}),
            ("PUT", "/api/v1/admin/member-levels",
             {"levels": [{"level": 0, "name": "all", "min_spent": 0}]}),
            ("GET", f"/api/v1/admin/flash-sales/{sale['id']}/report", None),
            ("GET", "/api/v1/admin/audit", None),
            ("GET", "/api/v1/admin/reports/sales", None)):
        status, _ = await call_raw(client, method, path, headers=mine, json=body)
        assert status == 403, f"{method} {path}"

    state = await pg.fetchrow("SELECT user_id, state FROM user_coupons WHERE id = $1",
                              coupon["id"])
    assert (state["user_id"], state["state"]) == (victim, "available")
    assert await pg.fetchval("SELECT points FROM members WHERE user_id = $1", victim) == 1000
    assert await pg.fetchval("SELECT coalesce(sum(delta), 0) FROM points_ledger"
                             " WHERE user_id = $1", thief) == 0
    assert await pg.fetchval("SELECT status FROM orders WHERE order_id = $1",
                             order_id) == "pending_payment"
    assert await pg.fetchval("SELECT count(*) FROM after_sales_requests WHERE order_id = $1",
                             order_id) == 0
    assert await pg.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", order_id) == 0


def none_alg(claims: dict[str, Any]) -> str:
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(orjson.dumps(claims)).decode()
    return f"{header}.{payload}."


def header_swapped(settings: Settings, claims: dict[str, Any], alg: str) -> str:
    """An HS256 signature under a header naming another algorithm."""
    good = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    _, payload, signature = good.split(".")
    header = jwt.utils.base64url_encode(
        orjson.dumps({"alg": alg, "typ": "JWT"})).decode()
    return f"{header}.{payload}.{signature}"


def forged_admin_tokens(settings: Settings) -> dict[str, str]:
    claims = {"sub": "mallory", "role": "admin", "exp": int(time.time()) + 600}
    return {
        "wrong-key": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "alg-none": none_alg(claims),
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 5}, settings.jwt_secret,
                              algorithm="HS256"),
        "hs512": jwt.encode(claims, settings.jwt_secret, algorithm="HS512"),
        "rs256-header": header_swapped(settings, claims, "RS256"),
        "hs512-header": header_swapped(settings, claims, "HS512"),
        "no-signature": jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
        .rsplit(".", 1)[0] + ".",
    }


FORGED_TARGETS = [
    ("POST", "/api/v1/admin/coupons", coupon_body()),
    ("POST", "/api/v1/admin/coupons/1/end", None),
    ("POST", "/api/v1/admin/price-lists", {"name": "n", "starts_at": "2030-01-01T00:00:00Z",
                                           "ends_at": "2030-01-02T00:00:00Z",
                                           "items": [{"sku_id": 1, "price": 1}]}),
    ("PUT", "/api/v1/admin/member-levels",
     {"levels": [{"level": 0, "name": "all", "min_spent": 0}]}),
    ("POST", "/api/v1/admin/members/mallory/points", {"delta": 100, "note": "free"}),
    ("PATCH", "/api/v1/admin/flash-sales/1", {"price": 1}),
    ("POST", "/api/v1/admin/flash-sales/1/end", None),
    ("PUT", "/api/v1/admin/users/mallory/role", {"role": "staff"}),
    ("GET", "/api/v1/admin/reports/sales", None),
    ("GET", "/api/v1/admin/audit", None),
    ("GET", "/api/v1/admin/members/mallory", None),
    ("GET", "/api/v1/me/recommendations", None),
    ("GET", "/api/v1/me/points", None),
    ("POST", "/api/v1/me/checkin", None),
    ("POST", "/api/v1/coupons/1/claim", None),
]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_expired_and_wrong_algorithm_tokens_are_401(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    before = await row_counts(pg)
    for name, token in forged_admin_tokens(settings).items():
        for method, path, body in FORGED_TARGETS:
            status, answer = await call_raw(client, method, path, json=body,
                                            headers=bearer(token))
            assert status == 401, f"{name} {method} {path}: {status} {answer}"
            assert answer["error"]["code"] == "unauthorized"
    assert await row_counts(pg) == before


async def test_signed_callbacks_cannot_move_another_order(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    webhook = "/api/v1/payments/webhooks/sandbox"
    owner = f"cb-{uuid.uuid4().hex[:6]}"
    paid_for = await insert_order(pg, owner)
    other = await insert_order(pg, f"cb-{uuid.uuid4().hex[:6]}")
    _, payment = await create_payment(client, settings, owner, paid_for)
    # A correctly signed event naming another order, or carrying injection strings.
    for changed in ({"order_id": other}, {"order_id": "' OR 1=1 --"},
                    {"payment_id": "'; DROP TABLE payments; --"}):
        body, headers = callback(settings, {**payment, **changed})
        resp = await client.post(webhook, data=body, headers=headers)
        assert 400 <= resp.status < 500, (changed, resp.status, await resp.text())
    assert await pg.fetchval("SELECT status FROM orders WHERE order_id = $1",
                             other) == "pending_payment"
    body, headers = callback(settings, payment)
    answers = [await client.post(webhook, data=body, headers=headers) for _ in range(3)]
    outcomes = [(r.status, (await r.json())["outcome"]) for r in answers]
    assert outcomes == [(200, "paid")] * 3
    assert await pg.fetchval("SELECT status FROM orders WHERE order_id = $1", paid_for) == "paid"
    assert await pg.fetchval("SELECT status FROM orders WHERE order_id = $1",
                             other) == "pending_payment"
    assert await new_category(client, settings)  # the catalog still writes
