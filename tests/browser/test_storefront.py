"""The storefront in headless Chromium against a real `mall serve` and `mall writer`:
a customer's whole journey, the flash-sale button on promotion day, and the phone layout."""

from __future__ import annotations

import re

from playwright.async_api import Page, Route, expect

from tests.browser.conftest import OpenPage, shot
from tests.browser.store_helpers import (
    call,
    create_category,
    create_product,
    horizontal_overflow,
    page_token,
    pg_fetch,
    register,
    sale_product,
    sign_in_page,
    staff,
    unique,
)
from tests.stack import Stack, window


async def _toast(page: Page, text: str) -> None:
    await expect(page.locator("#toasts .notice", has_text=text).first).to_be_visible()


async def test_customer_journey_signup_search_flash_sale_cart_checkout_payment(
        open_page: OpenPage, web_stack: Stack) -> None:
    tag = unique("zz")
    category = await create_category(web_stack, f"数码 {tag}")
    phone = await create_product(web_stack, f"Store Phone {tag} 店面手机", [
        {"price": 129900, "stock": 20, "attributes": {"color": "black"}},
        {"price": 119900, "stock": 20, "attributes": {"color": "white"}}], category)
    product_sku = phone["skus"][1]["id"]
    _, sale = await sale_product(web_stack, f"Flash Buds {unique()} 秒杀耳机", stock=3, limit=1)

    page = await open_page("desktop", "/#/signup")
    email = f"{tag}@example.com"
    form = page.locator("[data-test=signup-form]")
    await form.locator("input[name=login]").fill(email)
    await form.locator("input[name=nickname]").fill("小明")
    await form.locator("input[name=password]").fill("store-pass-123")
    await form.locator("button[type=submit]").click()
    await _toast(page, "注册成功")
    await expect(page.locator("header a[href='#/account']")).to_be_visible()

    # Search from the header, filter by category, open the product, choose a SKU, add to cart.
    await page.locator("#top-q").fill(tag)
    await page.locator("header form button").click()
    results = page.locator("[data-test=results] [data-product]")
    await expect(results).to_have_count(1)
    await page.locator("[data-test=filters] select[name=category_id]").select_option(str(category))
    await page.locator("[data-test=filters] select[name=sort]").select_option("price_asc")
    await page.locator("[data-test=filters] button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"category_id=\d+.*sort=price_asc"))
    await expect(results).to_have_count(1)
    await shot(page, "store-search")
    await results.first.click()
    await expect(page.locator("h1")).to_have_text(phone["name"])
    await page.locator(f"button[data-sku='{product_sku}']").click()
    await expect(page.locator("[data-test=price]")).to_contain_text("¥1199.00")
    await shot(page, "store-product")
    await page.locator("[data-test=add-to-cart]").click()
    await _toast(page, "已加入购物车")

    # The flash sale: a double click sends one purchase; the order is followed, then paid.
    await page.goto(f"/#/sale/{sale['id']}")
    buy = page.locator("[data-test=flash-buy]")
    await expect(buy).to_be_enabled()
    await buy.dblclick()
    result = page.locator("[data-test=flash-result]")
    await expect(result).to_contain_text("订单已生成")
    await shot(page, "store-flash-sale-bought")
    # A flash-sale order has no address: the order page asks for one (saved here, then
    # chosen) before it offers the payment.
    await result.locator("[data-test=choose-address]").click()
    chooser = page.locator("[data-test=order-address]")
    await expect(chooser).to_be_visible()
    await expect(page.locator("[data-test=pay]")).to_have_count(0)
    address = chooser.locator("[data-test=address-form]")
    for name, value in {"recipient": "王小明", "phone": "13800138000", "province": "浙江",
                        "city": "杭州", "district": "西湖区", "line": "文三路 1 号"}.items():
        await address.locator(f"input[name={name}]").fill(value)
    await address.locator("button[type=submit]").click()
    await _toast(page, "地址已保存")
    await expect(chooser.locator(".addr-list input[type=radio]:checked")).to_have_count(1)
    await chooser.locator("[data-test=set-address]").click()
    await _toast(page, "收货地址已设置")
    await expect(page.locator("[data-test=ship-to]")).to_contain_text("王小明")
    await page.locator("[data-test=pay]").click()
    await expect(page.locator("[data-test=order-status]")).to_have_text("已付款")
    await expect(page.locator("[data-test=history] li")).to_have_count(3)
    sale_orders = await pg_fetch(
        web_stack, "SELECT order_id, status, address FROM orders WHERE sale_id = $1", sale["id"])
    assert [r["status"] for r in sale_orders] == ["paid"], sale_orders
    assert "sealed" in sale_orders[0]["address"] and "王小明" not in sale_orders[0]["address"]
    status_code, flash_order = await call(web_stack, "GET",
                                          f"/orders/{sale_orders[0]['order_id']}",
                                          await page_token(page))
    assert status_code == 200 and flash_order["address"]["recipient"] == "王小明"
    assert flash_order["address"]["line"] == "文三路 1 号"

    # Cart -> checkout with a new address -> sandbox payment.
    await page.locator("header a[href='#/cart']").click()
    line = page.locator(f".cart-line[data-sku='{product_sku}']")
    await expect(line).to_be_visible()
    await line.locator("input.qty").fill("2")
    await line.locator("button", has_text="更新").click()
    await expect(page.locator("[data-test=cart-total]")).to_have_text("¥2398.00")
    await shot(page, "store-cart")
    await page.locator("[data-test=to-checkout]").click()
    # The address saved for the flash-sale order is offered and chosen.
    await expect(page.locator(".addr-list input[type=radio]:checked")).to_have_count(1)
    await expect(page.locator(".addr-list")).to_contain_text("王小明")
    await page.locator("[data-test=delivery]").select_option("express")
    await expect(page.locator("[data-test=totals]")).to_contain_text("¥2418.00")
    await shot(page, "store-checkout")
    await page.locator("[data-test=place-order]").click()
    await expect(page).to_have_url(re.compile(r"#/order/co-"))
    status = page.locator("[data-test=order-status]")
    await expect(status).to_have_text("待付款")
    await expect(page.locator("[data-test=order-total]")).to_have_text("¥2418.00")
    await page.locator("[data-test=pay]").click()
    await expect(status).to_have_text("已付款")
    await shot(page, "store-order")

    # The order list shows both orders as paid; the server agrees.
    await page.locator("header a[href='#/orders']").click()
    rows = page.locator("[data-order]")
    await expect(rows).to_have_count(2)
    await expect(rows.locator("[data-test=order-status]", has_text="已付款")).to_have_count(2)
    await expect(rows.filter(has_text="Flash Buds")).to_have_count(1)
    await expect(rows.filter(has_text="(color: white) × 2")).to_have_count(1)
    await shot(page, "store-orders")
    status_code, mine = await call(web_stack, "GET", "/orders", await page_token(page))
    assert status_code == 200
    assert sorted(o["status"] for o in mine["items"]) == ["paid", "paid"]
    regular = [o for o in mine["items"] if o["sale_id"] is None]
    assert regular[0]["total"] == 241800 and regular[0]["items"] == [
        {"sku_id": product_sku, "qty": 2, "price": 119900, "product_id": phone["id"],
         "product_name": phone["name"], "attributes": {"color": "white"}}]
    status_code, cart = await call(web_stack, "GET", "/cart", await page_token(page))
    assert cart["items"] == []

    # Staff ship and deliver the regular order; the customer asks for a refund.
    order_id = regular[0]["order_id"]
    for step, body in (("ship", {"carrier": "SF", "tracking_number": "SF123"}), ("deliver", {})):
        code, answer = await call(web_stack, "POST", f"/admin/orders/{order_id}/{step}",
                                  staff(web_stack), body)
        assert code == 200, answer
    await page.goto(f"/#/order/{order_id}")
    await expect(page.locator("[data-test=order-status]")).to_have_text("已送达")
    await expect(page.locator("[data-test=history] li")).to_have_count(4)
    request = page.locator("[data-test=after-sales]")
    await request.locator("select[name=type]").select_option("refund")
    await request.locator("textarea[name=reason]").fill("不想要了")
    await request.locator("button[type=submit]").click()
    await expect(request).to_contain_text("售后申请已提交")
    await expect(page.locator("[data-test=after-sales-list] [data-test=as-status]")).to_have_text(
        ["审核中"])
    asked = await pg_fetch(web_stack, "SELECT type, status FROM after_sales_requests"
                           " WHERE order_id = $1", order_id)
    assert [(r["type"], r["status"]) for r in asked] == [("refund", "requested")]

    # English, then log out.
    await page.locator("header a[href='#/orders']").click()
    await page.locator("[data-test=lang]").click()
    await expect(page.locator("h1")).to_have_text("My orders")
    await page.locator("header a[href='#/account']").click()
    await page.locator("[data-test=logout]").click()
    await expect(page.locator("header a[href='#/login']")).to_have_text("Log in")


async def test_flash_sale_button_waits_for_the_start_and_reports_refusals(
        open_page: OpenPage, web_stack: Stack) -> None:
    tag = unique("fs")
    _, soon = await sale_product(web_stack, f"Soon {tag}", stock=1, limit=1, start_in_s=4)
    buyer = await register(web_stack)
    page = await open_page("phone", "/")
    await sign_in_page(page, buyer, f"/#/sale/{soon['id']}")
    buy = page.locator("[data-test=flash-buy]")
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("即将开始")
    await expect(page.locator("[data-test=countdown]")).to_contain_text("距开始 00:00:0")
    await shot(page, "store-flash-sale-countdown")
    await expect(buy).to_be_enabled(timeout=10_000)
    await expect(buy).to_have_text("立即抢购")

    # Someone else takes the last unit while our page still shows it (the page refreshes the
    # sale every 3 s; the click comes well before): the click then says sold out.
    _, last = await sale_product(web_stack, f"Last {tag}", stock=1, limit=1)
    await page.goto(f"/#/sale/{last['id']}")
    await expect(buy).to_be_enabled()
    other = await register(web_stack)
    status, _ = await call(web_stack, "POST", f"/flash-sales/{last['id']}/orders",
                           other["tokens"]["access_token"], {"qty": 1},
                           {"Idempotency-Key": unique("k")})
    assert status == 202
    await buy.click()
    await expect(page.locator("[data-test=flash-result]")).to_contain_text("已抢光")
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("已抢光")

    # A buyer at the per-user limit.
    _, live = await sale_product(web_stack, f"Limit {tag}", stock=5, limit=1)
    status, _ = await call(web_stack, "POST", f"/flash-sales/{live['id']}/orders",
                           buyer["tokens"]["access_token"], {"qty": 1},
                           {"Idempotency-Key": unique("k")})
    assert status == 202
    await page.goto(f"/#/sale/{live['id']}")
    await expect(buy).to_be_enabled()
    await buy.click()
    await expect(page.locator("[data-test=flash-result]")).to_contain_text("已达到限购数量")
    await expect(buy).to_be_disabled()
    rows = await pg_fetch(web_stack, "SELECT count(*) AS n FROM orders WHERE sale_id = $1",
                          live["id"])
    assert rows[0]["n"] <= 1  # the refused click created nothing

    # Not signed in: a clear message with a log-in link, and no request.
    guest = await open_page("phone", f"/#/sale/{live['id']}")
    gbuy = guest.locator("[data-test=flash-buy]")
    await expect(gbuy).to_be_enabled()
    await gbuy.click()
    await expect(guest.locator("[data-test=flash-result]")).to_contain_text("请先登录")
    await expect(guest.locator("[data-test=flash-result] a[href^='#/login']")).to_be_visible()


async def test_phone_layout_has_no_horizontal_overflow(open_page: OpenPage,
                                                       web_stack: Stack) -> None:
    tag = unique("ph")
    product = await create_product(
        web_stack, f"A rather long product name {tag} 超长的商品名称测试",
        [{"price": 5900, "stock": 9, "attributes": {"size": "XL"}}])
    _, sale = await sale_product(web_stack, f"Phone sale {tag}", stock=2, limit=1)
    buyer = await register(web_stack)
    page = await open_page("phone", "/")
    await sign_in_page(page, buyer, "/#/")
    await call(web_stack, "POST", "/cart/items", buyer["tokens"]["access_token"],
               {"sku_id": product["skus"][0]["id"], "qty": 1})
    screens = {
        "home": ("/#/", "[data-sale]"),
        "search": (f"/#/search?q={tag}", "[data-product]"),
        "product": (f"/#/product/{product['id']}", "[data-test=add-to-cart]"),
        "sale": (f"/#/sale/{sale['id']}", "[data-test=flash-buy]"),
        "cart": ("/#/cart", ".cart-line"),
        "checkout": ("/#/checkout", "[data-test=place-order]"),
        "account": ("/#/account", "[data-test=logout]"),
        "coupons": ("/#/coupons", "h1"),
        "points": ("/#/points", "[data-test=checkin]"),
    }
    for name, (path, ready) in screens.items():
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        assert await horizontal_overflow(page) == 0, name
        await shot(page, f"store-{name}")
    await page.locator("[data-test=checkin]").click()
    await _toast(page, "签到成功")
    desktop = await open_page("desktop", "/")
    await expect(desktop.locator("[data-sale]").first).to_be_visible()
    await shot(desktop, "store-home")


async def test_flash_sale_retry_after_a_lost_answer_reuses_the_key_and_tokens_are_fetched(
        open_page: OpenPage, web_stack: Stack) -> None:
    """The purchase reaches the server but its answer is lost on the way back (the browser sees
    a network error); the next click sends the same Idempotency-Key and gets the same order."""
    _, sale = await sale_product(web_stack, f"Retry {unique()}", stock=5, limit=2)
    buyer = await register(web_stack)
    page = await open_page("desktop", "/")
    keys: list[str] = []
    lost = {"done": False}

    async def lose_first_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if lost["done"]:
            await route.continue_()
            return
        lost["done"] = True
        await route.fetch()  # the server accepts the purchase...
        await route.abort("connectionreset")  # ...and the answer never arrives

    await page.route(f"**/api/v1/flash-sales/{sale['id']}/orders", lose_first_answer)
    await sign_in_page(page, buyer, f"/#/sale/{sale['id']}")
    buy = page.locator("[data-test=flash-buy]")
    await buy.click()
    result = page.locator("[data-test=flash-result]")
    await expect(result).to_contain_text("网络异常")
    await expect(buy).to_be_enabled()
    await buy.click()
    await expect(result).to_contain_text("订单已生成")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys
    rows = await pg_fetch(web_stack, "SELECT order_id FROM orders WHERE sale_id = $1", sale["id"])
    assert len(rows) == 1, rows

    # A sale that requires an admission token: the page fetches one before buying.
    product = await create_product(web_stack, f"Token {unique()}", [{"price": 9900, "stock": 9}])
    starts_at, ends_at = window(-1, 3600)
    status, gated = await call(web_stack, "POST", "/admin/flash-sales", staff(web_stack), {
        "sku_id": product["skus"][0]["id"], "price": 990, "stock": 3, "per_user_limit": 1,
        "starts_at": starts_at, "ends_at": ends_at, "requires_token": True})
    assert status == 201, gated
    token_calls: list[str] = []
    page.on("request", lambda r: token_calls.append(r.url) if "admission-token" in r.url else None)
    await page.goto(f"/#/sale/{gated['id']}")
    await buy.click()
    await expect(result).to_contain_text("订单已生成")
    assert len(token_calls) == 1
    rows = await pg_fetch(web_stack, "SELECT order_id FROM orders WHERE sale_id = $1",
                          gated["id"])
    assert len(rows) == 1
