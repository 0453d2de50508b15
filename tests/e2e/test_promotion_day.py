"""A promotion day through the API only: staff run a coupon campaign and a flash sale,
customers grab coupons, buy, pay, earn points and spend them, and staff read the results in
the reports."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import call, staff_headers
from tests.e2e.helpers import wait_persisted
from tests.stack import auth, iso, now, window

CUSTOMERS = 3


ADDRESS = {"recipient": "赵六", "phone": "+8613600136000", "province": "浙江",
           "city": "杭州", "line": "文一西路 5 号"}


async def pay_and_complete(client: TestClient, settings: Settings, who: str,
                           order_id: str) -> None:
    me, staff = auth(settings, who), staff_headers(settings)
    await wait_persisted(client, settings, who, order_id)
    _, payment = await call(client, "POST", f"/api/v1/orders/{order_id}/payments", 201,
                            headers=me, json={"provider": "sandbox"})
    await call(client, "POST", f"/api/v1/sandbox/pay/{payment['payment_id']}", 200, headers=me)
    _, order = await call(client, "GET", f"/api/v1/orders/{order_id}", 200, headers=me)
    if order["address"] is None and order.get("delivery") != "pickup":
        # A flash-sale purchase carries no address: the buyer gives one before it ships.
        await call(client, "PUT", f"/api/v1/orders/{order_id}/address", 200, headers=me,
                   json={"address": ADDRESS})
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/ship", 200, headers=staff,
               json={"carrier": "SF Express", "tracking_number": f"SF{uuid.uuid4().int % 10**10}"})
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/deliver", 200, headers=staff)
    await call(client, "POST", f"/api/v1/orders/{order_id}/confirm-receipt", 200, headers=me)


async def test_coupon_campaign_flash_sale_points_and_reports(client: TestClient,
                                                             settings: Settings) -> None:
    staff = staff_headers(settings)
    tag = uuid.uuid4().hex[:8]
    customers = [f"day{tag}{i}" for i in range(CUSTOMERS)]
    _, product = await call(client, "POST", "/api/v1/admin/products", 201, headers=staff,
                            json={"name": f"羽绒服 {tag}",
                                  "skus": [{"price": 50000, "stock": 50}]})
    sku = product["skus"][0]["id"]

    # Staff run a coupon campaign: 30.00 off from 200.00, two of them, one per customer.
    start = now()
    _, template = await call(client, "POST", "/api/v1/admin/coupons", 201, headers=staff, json={
        "name": f"满200减30 {tag}", "kind": "threshold", "threshold": 20000, "amount": 3000,
        "claim_starts_at": iso(start - timedelta(seconds=5)),
        "claim_ends_at": iso(start + timedelta(hours=1)),
        "valid_from": iso(start - timedelta(seconds=5)),
        "valid_until": iso(start + timedelta(days=3)),
        "total": 2, "per_user": 1})
    held: dict[str, int] = {}
    for who in customers:
        status, body = await call(client, "POST", f"/api/v1/coupons/{template['id']}/claim",
                                  headers=auth(settings, who))
        if status == 201:
            held[who] = body["id"]
        else:
            assert (status, body["error"]["code"]) == (409, "sold_out")
    assert len(held) == 2

    # Customers buy with their coupons, pay, receive: 470.00 each, 470 points earned.
    orders: list[str] = []
    for who, coupon in held.items():
        _, placed = await call(client, "POST", "/api/v1/checkout", 202,
                               headers=auth(settings, who),
                               json={"items": [{"sku_id": sku, "qty": 1}],
                                     "delivery": "pickup", "coupons": [coupon]})
        assert placed["total"] == 47000
        orders.append(placed["order_id"])
        await pay_and_complete(client, settings, who, placed["order_id"])
        _, membership = await call(client, "GET", "/api/v1/me/membership", 200,
                                   headers=auth(settings, who))
        assert (membership["points"], membership["spent"]) == (470, 47000)

    # Staff run a flash sale; a customer with points buys and spends no points there
    # (flash-sale orders are the plain hot path), then spends points on a regular order.
    starts_at, ends_at = window(-1, 600)
    _, sale = await call(client, "POST", "/api/v1/admin/flash-sales", 201, headers=staff,
                         json={"sku_id": sku, "price": 19900, "stock": 5, "per_user_limit": 1,
                               "starts_at": starts_at, "ends_at": ends_at})
    spender = next(iter(held))
    buyers = [spender, customers[-1]]
    for who in buyers:
        _, accepted = await call(client, "POST", f"/api/v1/flash-sales/{sale['id']}/orders",
                                 202, headers=auth(settings, who), json={"qty": 1})
        await pay_and_complete(client, settings, who, accepted["order_id"])
    _, placed = await call(client, "POST", "/api/v1/checkout", 202,
                           headers=auth(settings, spender),
                           json={"items": [{"sku_id": sku, "qty": 1}], "delivery": "pickup",
                                 "points": 600})
    assert (placed["total"], placed["points_used"]) == (50000 - 600, 600)
    _, points = await call(client, "GET", "/api/v1/me/points", 200,
                           headers=auth(settings, spender))
    await wait_persisted(client, settings, spender, placed["order_id"])
    _, points = await call(client, "GET", "/api/v1/me/points", 200,
                           headers=auth(settings, spender))
    assert points["balance"] == 470 + 199 - 600
    assert sum(entry["delta"] for entry in points["items"]) == points["balance"]

    # Staff read the results.
    _, report = await call(client, "GET", "/api/v1/admin/reports/coupons", 200, headers=staff)
    row = next(r for r in report["rows"] if r["template_id"] == template["id"])
    assert (row["used"], row["discount"], row["orders"], row["revenue"]) == \
        (2, 6000, 2, 94000)
    _, flash = await call(client, "GET", f"/api/v1/admin/flash-sales/{sale['id']}/report",
                          200, headers=staff)
    assert (flash["sold"], flash["paid_orders"], flash["revenue"], flash["buyers"]) == \
        (2, 2, 2 * 19900, 2)
    _, sales = await call(client, "GET", "/api/v1/admin/reports/sales?group_by=product", 200,
                          headers=staff)
    mine: list[dict[str, Any]] = [r for r in sales["rows"]
                                  if r.get("product_id") == product["id"]]
    assert sum(r["units"] for r in mine) == 4  # two coupon orders, two flash-sale orders
    _, coupon_view = await call(client, "GET", f"/api/v1/admin/coupons/{template['id']}", 200,
                                headers=staff)
    assert coupon_view["counts"]["used"] == 2 and coupon_view["counts"]["issued"] == 2
