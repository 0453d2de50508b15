"""Order lines named from the catalog (queued, persisted, staff search), the buyer's address on a
flash-sale order (set before shipping, never after), and the buyer's after-sales requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from order_writer.lifecycle import ImmediateRefunder, record_payment
from tests.e2e.accounts_helpers import private_client, register
from tests.e2e.helpers import buy, create_sale, wait_persisted
from tests.e2e.test_orders_api import call, lifecycle_client
from tests.integration.test_lifecycle_helpers import make_order, status_of, steps
from tests.stack import auth

SAVED = {"recipient": "李四", "phone": "+8613800138000", "province": "浙江", "city": "杭州",
         "district": "西湖区", "line": "文三路 1 号"}
INLINE = {"recipient": "王五", "phone": "+8613700137000", "province": "广东", "city": "深圳",
          "line": "深南大道 3 号"}
SHIP = {"carrier": "SF Express", "tracking_number": "SF7654321"}


@pytest.fixture(scope="module")
async def api(client: TestClient, settings: Settings) -> AsyncIterator[TestClient]:
    async with lifecycle_client(client, settings) as lifecycle:
        yield lifecycle


async def named_sale(api: TestClient, settings: Settings, name: str,
                     attributes: dict[str, str]) -> tuple[dict[str, Any], int]:
    """A live flash sale on the one SKU of a new product; the sale and the product id."""
    status, product = await call(api, settings, "POST", "/api/v1/admin/products", "staff1",
                                 "staff", json={"name": name, "skus": [
                                     {"price": 5000, "stock": 20, "attributes": attributes}]})
    assert status == 201, product
    sale = await create_sale(api, settings, stock=5, limit=5, sku_id=product["skus"][0]["id"])
    return sale, product["id"]


def line_of(sale: dict[str, Any], product_id: int, name: str, attributes: dict[str, str],
            qty: int = 1) -> dict[str, Any]:
    return {"sku_id": sale["sku_id"], "qty": qty, "price": sale["price"],
            "product_id": product_id, "product_name": name, "attributes": attributes}


async def order_address(pg: asyncpg.Pool, order_id: str) -> Any:
    return await pg.fetchval("SELECT address FROM orders WHERE order_id = $1", order_id)


# -- names on order lines ----------------------------------------------------------------------


async def test_lines_are_named_on_persisted_orders_everywhere(api: TestClient,
                                                              settings: Settings) -> None:
    name, attributes = f"保温杯 Mug {uuid.uuid4().hex[:6]}", {"color": "红", "size": "L"}
    sale, product_id = await named_sale(api, settings, name, attributes)
    buyer = f"named{uuid.uuid4().hex[:8]}"
    _, accepted = await buy(api, settings, sale["id"], buyer, qty=2)
    order_id = accepted["order_id"]
    expected = [line_of(sale, product_id, name, attributes, qty=2)]
    order = await wait_persisted(api, settings, buyer, order_id)
    assert order["items"] == expected and order["user_id"] == buyer

    status, listed = await call(api, settings, "GET", "/api/v1/orders", buyer)
    assert status == 200 and [o["items"] for o in listed["items"]] == [expected]

    status, staff_view = await call(api, settings, "GET", f"/api/v1/orders/{order_id}", "ops1",
                                    "staff")
    assert status == 200 and staff_view["user_id"] == buyer
    assert staff_view["items"] == expected

    status, found = await call(api, settings, "GET", f"/api/v1/admin/orders?user_id={buyer}",
                               "ops1", "staff")
    assert status == 200
    [row] = found["items"]
    assert (row["order_id"], row["user_id"], row["items"]) == (order_id, buyer, expected)
    assert row["has_address"] is False


async def test_lines_are_named_on_a_queued_order(fresh_settings: Settings) -> None:
    """Without the relay the order stays queued in Redis; its lines are named from PostgreSQL."""
    async with private_client(fresh_settings) as own:
        name, attributes = f"Queued 排队 {uuid.uuid4().hex[:6]}", {"edition": "first"}
        sale, product_id = await named_sale(own, fresh_settings, name, attributes)
        buyer = f"queued{uuid.uuid4().hex[:8]}"
        status, accepted = await buy(own, fresh_settings, sale["id"], buyer)
        assert status == 202
        order_id = accepted["order_id"]
        for who, role in ((buyer, "customer"), ("ops1", "staff")):
            status, order = await call(own, fresh_settings, "GET", f"/api/v1/orders/{order_id}",
                                       who, role)
            assert status == 200, order
            assert order["status"] == "queued" and order["user_id"] == buyer
            assert order["items"] == [line_of(sale, product_id, name, attributes)]
        # Not yet in PostgreSQL: the address waits until it is.
        status, answer = await call(own, fresh_settings, "PUT",
                                    f"/api/v1/orders/{order_id}/address", buyer,
                                    json={"address": INLINE})
        assert status == 409 and answer["error"]["code"] == "order_not_persisted", answer
        status, answer = await call(own, fresh_settings, "PUT",
                                    f"/api/v1/orders/{order_id}/address", "intruder3",
                                    json={"address": INLINE})
        assert status == 404 and answer["error"]["code"] == "not_found"


# -- the address of a flash-sale order ---------------------------------------------------------


async def registered_buyer(api: TestClient, settings: Settings
                           ) -> tuple[str, dict[str, Any]]:
    """A registered user with one saved address: (user id, the address)."""
    user_id = (await register(api))["user"]["user_id"]
    status, saved = await call(api, settings, "POST", "/api/v1/me/addresses", user_id,
                               json=SAVED)
    assert status == 201, saved
    return user_id, saved


async def flash_order(api: TestClient, settings: Settings, buyer: str) -> str:
    sale = await create_sale(api, settings, stock=3, price=999)
    _, accepted = await buy(api, settings, sale["id"], buyer)
    order = await wait_persisted(api, settings, buyer, accepted["order_id"])
    assert order["address"] is None
    return str(order["order_id"])


async def test_buyer_sets_a_saved_address_then_changes_it_until_it_ships(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    buyer, saved = await registered_buyer(api, settings)
    order_id = await flash_order(api, settings, buyer)
    path = f"/api/v1/orders/{order_id}/address"

    status, set_ = await call(api, settings, "PUT", path, buyer,
                              json={"address_id": saved["id"]})
    assert status == 200, set_
    assert (set_["order_id"], set_["status"]) == (order_id, "pending_payment")
    assert set_["address"]["recipient"] == SAVED["recipient"]
    status, order = await call(api, settings, "GET", f"/api/v1/orders/{order_id}", buyer)
    assert {k: order["address"][k] for k in SAVED} == SAVED
    stored = await order_address(pg, order_id)
    assert "sealed" in stored and SAVED["recipient"] not in stored  # sealed at rest
    assert SAVED["line"] not in stored and SAVED["phone"] not in stored

    paid = await record_payment(pg, ImmediateRefunder(pg), order_id, 999, "alipay",
                                f"a-{order_id}", "system")
    assert paid.status == "paid"
    status, changed = await call(api, settings, "PUT", path, buyer, json={"address": INLINE})
    assert (status, changed["status"]) == (200, "paid"), changed
    status, order = await call(api, settings, "GET", f"/api/v1/orders/{order_id}", buyer)
    assert {k: order["address"][k] for k in INLINE} == INLINE
    assert order["address"]["district"] == ""  # filled in as checkout fills it

    status, shipped = await call(api, settings, "POST", f"/api/v1/admin/orders/{order_id}/ship",
                                 "ops1", "staff", json=SHIP)
    assert status == 200, shipped
    before = await order_address(pg, order_id)
    status, refused = await call(api, settings, "PUT", path, buyer,
                                 json={"address_id": saved["id"]})
    assert status == 409 and refused["error"]["code"] == "address_not_changeable", refused
    assert refused["error"]["details"]["current_status"] == "shipped"
    assert await order_address(pg, order_id) == before
    assert [(s[0], s[1], s[2]) for s in await steps(pg, order_id)] == [
        ("queued", "pending_payment", "order_persisted"),
        ("pending_payment", "pending_payment", "address_set"),
        ("pending_payment", "paid", "payment_received"),
        ("paid", "paid", "address_changed"),
        ("paid", "shipped", "shipped"),
    ]


BAD_BODIES = [
    pytest.param(b"{}", id="neither"),
    pytest.param(b'{"address_id": 1, "address": {}}', id="both-malformed"),
    pytest.param(None, id="both-valid"),
    pytest.param(b'{"address": {"recipient": "x", "phone": "12345"}}', id="incomplete"),
    pytest.param(b'{"address": {"recipient": "x", "phone": "not a phone", "province": "p",'
                 b' "city": "c", "line": "l"}}', id="bad-phone"),
    pytest.param(b'{"address_id": 0}', id="id-zero"),
    pytest.param(b'{"address_id": "1"}', id="id-string"),
    pytest.param(b'{"address_id": 1, "extra": true}', id="unknown-field"),
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param("foreign", id="someone-elses-saved-address"),
]


@pytest.mark.parametrize("raw", BAD_BODIES)
async def test_bad_input_is_422_and_changes_nothing(api: TestClient, settings: Settings,
                                                    pg: asyncpg.Pool,
                                                    raw: bytes | str | None) -> None:
    buyer, saved = await registered_buyer(api, settings)
    order_id = await flash_order(api, settings, buyer)
    if raw is None:
        raw = orjson.dumps({"address_id": saved["id"], "address": INLINE})
    elif raw == "foreign":
        _, theirs = await registered_buyer(api, settings)
        raw = b'{"address_id": %d}' % theirs["id"]
    history = await steps(pg, order_id)
    resp = await api.put(f"/api/v1/orders/{order_id}/address", data=raw,
                         headers={"Content-Type": "application/json", **auth(settings, buyer)})
    status, answer = resp.status, await resp.json()
    assert status == 422 and answer["error"]["code"] == "invalid_request", answer
    assert await order_address(pg, order_id) is None
    assert await steps(pg, order_id) == history


async def test_someone_elses_order_is_404_and_unchanged(api: TestClient, settings: Settings,
                                                        pg: asyncpg.Pool) -> None:
    buyer, _ = await registered_buyer(api, settings)
    order_id = await flash_order(api, settings, buyer)
    intruder, theirs = await registered_buyer(api, settings)
    for body in ({"address_id": theirs["id"]}, {"address": INLINE}):
        status, answer = await call(api, settings, "PUT", f"/api/v1/orders/{order_id}/address",
                                    intruder, json=body)
        assert status == 404 and answer["error"]["code"] == "not_found", answer
    status, answer = await call(api, settings, "PUT", "/api/v1/orders/no-such-order/address",
                                intruder, json={"address": INLINE})
    assert status == 404
    assert await order_address(pg, order_id) is None
    assert len(await steps(pg, order_id)) == 1


@pytest.mark.parametrize("status_of_order", ["shipped", "delivered", "completed", "cancelled",
                                             "refunded"])
async def test_address_cannot_change_once_past_payment(api: TestClient, settings: Settings,
                                                       pg: asyncpg.Pool,
                                                       status_of_order: str) -> None:
    order = await make_order(pg, status_of_order)
    status, answer = await call(api, settings, "PUT",
                                f"/api/v1/orders/{order.order_id}/address", order.user_id,
                                json={"address": INLINE})
    assert status == 409 and answer["error"]["code"] == "address_not_changeable", answer
    assert answer["error"]["details"]["current_status"] == status_of_order
    assert await order_address(pg, order.order_id) is None
    assert len(await steps(pg, order.order_id)) == 1


async def test_ship_refuses_an_order_without_address(api: TestClient, settings: Settings,
                                                     pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "paid")
    ship = f"/api/v1/admin/orders/{order.order_id}/ship"
    status, answer = await call(api, settings, "POST", ship, "ops1", "staff", json=SHIP)
    assert status == 409 and answer["error"]["code"] == "address_missing", answer
    assert await status_of(pg, order.order_id) == "paid"
    assert len(await steps(pg, order.order_id)) == 1
    status, found = await call(api, settings, "GET",
                               f"/api/v1/admin/orders?user_id={order.user_id}", "ops1", "staff")
    assert [o["has_address"] for o in found["items"]] == [False]

    status, _ = await call(api, settings, "PUT", f"/api/v1/orders/{order.order_id}/address",
                           order.user_id, json={"address": INLINE})
    assert status == 200
    status, answer = await call(api, settings, "POST", ship, "ops1", "staff", json=SHIP)
    assert (status, answer["status"]) == (200, "shipped"), answer


# -- the buyer's after-sales requests ----------------------------------------------------------


async def ask(api: TestClient, settings: Settings, order_id: str, user: str,
              kind: str = "refund") -> dict[str, Any]:
    status, created = await call(api, settings, "POST", f"/api/v1/orders/{order_id}/after-sales",
                                 user, json={"type": kind, "reason": "arrived broken"})
    assert status == 201, created
    return dict(created)


async def test_buyer_lists_after_sales_of_an_order_with_status_and_note(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "delivered")
    path = f"/api/v1/orders/{order.order_id}/after-sales"
    status, empty = await call(api, settings, "GET", path, order.user_id)
    assert (status, empty) == (200, {"order_id": order.order_id, "items": []})
    created = await ask(api, settings, order.order_id, order.user_id, "exchange")
    status, listed = await call(api, settings, "GET", path, order.user_id)
    assert [(r["id"], r["status"], r["note"]) for r in listed["items"]] == [
        (created["id"], "requested", None)]
    status, _ = await call(api, settings, "POST",
                           f"/api/v1/admin/after-sales/{created['id']}/reject", "ops1", "staff",
                           json={"note": "no stock to exchange"})
    assert status == 200
    status, listed = await call(api, settings, "GET", path, order.user_id)
    [request] = listed["items"]
    assert (request["status"], request["note"], request["type"]) == (
        "rejected", "no stock to exchange", "exchange")
    assert request["decided_at"] is not None and "decided_by" not in request
    for who, role in (("intruder5", "customer"), ("ops1", "staff")):
        status, answer = await call(api, settings, "GET", path, who, role)
        assert status == 404 and answer["error"]["code"] == "not_found"


async def test_buyer_pages_through_all_their_after_sales(api: TestClient, settings: Settings,
                                                         pg: asyncpg.Pool) -> None:
    buyer = f"asker{uuid.uuid4().hex[:8]}"
    orders = [await make_order(pg, "completed", user=buyer) for _ in range(3)]
    created = [await ask(api, settings, o.order_id, buyer) for o in orders]
    other = await make_order(pg, "delivered")
    await ask(api, settings, other.order_id, other.user_id)

    seen: list[int] = []
    cursor = None
    for _ in range(3):
        query = "/api/v1/me/after-sales?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await call(api, settings, "GET", query, buyer)
        assert status == 200, page
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in reversed(created)]
    status, page = await call(api, settings, "GET", "/api/v1/me/after-sales", "nobody9")
    assert (status, page) == (200, {"items": [], "next_cursor": None})


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=abc",
                                   "cursor=0", "cursor=%C2%B2"])
async def test_bad_after_sales_paging_is_422(api: TestClient, settings: Settings,
                                             query: str) -> None:
    status, answer = await call(api, settings, "GET", f"/api/v1/me/after-sales?{query}", "u1")
    assert status == 422 and answer["error"]["code"] == "invalid_request", answer
