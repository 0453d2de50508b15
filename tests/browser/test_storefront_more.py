"""More of the storefront in headless Chromium against real `mall serve` and `mall writer`:
the purchase rate limit as the buyer sees it (on a stack of its own with low limits), coupons
and points at checkout, cancel and confirm receipt, and the after-sales screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, Response, expect

from mall.namespace import drop_namespace
from tests.browser.conftest import VIEWPORTS, OpenPage, shot
from tests.browser.store_helpers import (
    call,
    checkout_now,
    create_product,
    delivered_order,
    horizontal_overflow,
    pg_fetch,
    register,
    sign_in_page,
    staff,
    unique,
    wait_order,
)
from tests.conftest import settings_for
from tests.stack import Stack, iso, now, token, window

RATE_WINDOW_S = 10


@pytest.fixture(scope="module")
async def low_limit_stack(database_url: str) -> AsyncIterator[Stack]:
    """A second mall whose purchase limit is one request per user per 10 s window."""
    settings = settings_for(database_url, "w", rate_limit_user=1, rate_window_s=RATE_WINDOW_S)
    stack = Stack.create(settings, f"browser-rl-{settings.namespace}")
    await stack.start()
    yield stack
    stack.stop()
    await drop_namespace(settings)


async def _toast(page: Page, text: str) -> None:
    await expect(page.locator("#toasts .notice", has_text=text).first).to_be_visible()


async def test_a_second_click_inside_the_rate_window_shows_the_wait_and_buys_nothing(
        browser: Browser, low_limit_stack: Stack) -> None:
    stack = low_limit_stack
    # Every staff write counts against its user too (one per window): one staff id per write.
    status, product = await call(
        stack, "POST", "/admin/products", token(stack.settings, unique("ops"), "staff"),
        {"name": f"Rate {unique()}", "skus": [{"price": 9900, "stock": 20}]})
    assert status == 201, product
    starts_at, ends_at = window(-1, 3600)
    status, sale = await call(stack, "POST", "/admin/flash-sales",
                              token(stack.settings, unique("ops"), "staff"), {
                                  "sku_id": product["skus"][0]["id"], "price": 990, "stock": 5,
                                  "per_user_limit": 3, "starts_at": starts_at,
                                  "ends_at": ends_at})
    assert status == 201, sale
    buyer = await register(stack)

    context = await browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN",
                                        base_url=stack.url)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    answers: list[tuple[int, str | None]] = []

    def on_response(resp: Response) -> None:
        if resp.url.endswith(f"/flash-sales/{sale['id']}/orders"):
            answers.append((resp.status, resp.headers.get("retry-after")))

    try:
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", on_response)
        await page.goto("/")
        await sign_in_page(page, buyer, f"/#/sale/{sale['id']}")
        buy = page.locator("[data-test=flash-buy]")
        await expect(buy).to_be_enabled()
        await buy.click()
        await expect(page.locator("[data-test=flash-order]")).to_contain_text("订单已生成")
        # The limit is 3 per person: the button opens again for another unit.
        await expect(buy).to_be_enabled()
        await expect(buy).to_have_text("立即抢购")
        await buy.click()
        clicked = page.locator("[data-test=flash-click]")
        await expect(clicked).to_contain_text(re.compile(r"操作太频繁，请 \d+ 秒后再试"))
        assert [a[0] for a in answers] == [202, 429], answers
        retry_after = answers[1][1]
        assert retry_after and 1 <= int(retry_after) <= RATE_WINDOW_S, answers
        await expect(clicked).to_contain_text(f"请 {int(retry_after)} 秒后再试")
        await expect(buy).to_be_disabled()
        await expect(buy).to_contain_text("秒后重试")
        # The first order stays on screen under the refusal.
        await expect(page.locator("[data-test=flash-order]")).to_contain_text("订单已生成")
        await shot(page, "store-flash-sale-rate-limited")
    finally:
        await context.close()
    assert not errors, f"script errors in the page: {errors}"

    user_id = buyer["user"]["user_id"]
    rows = await pg_fetch(stack, "SELECT order_id FROM orders WHERE sale_id = $1 AND user_id = $2",
                          sale["id"], user_id)
    assert len(rows) == 1, rows
    code, mine = await call(stack, "GET", "/orders", buyer["tokens"]["access_token"])
    assert code == 200
    assert [o["order_id"] for o in mine["items"] if o["sale_id"] == sale["id"]] == [
        rows[0]["order_id"]]


async def test_checkout_with_a_pushed_coupon_and_points(open_page: OpenPage,
                                                        web_stack: Stack) -> None:
    price, off, points = 20000, 2000, 500
    product = await create_product(web_stack, f"Promo {unique()} 促销",
                                   [{"price": price, "stock": 5}])
    sku_id = product["skus"][0]["id"]
    buyer = await register(web_stack)
    user_id = buyer["user"]["user_id"]
    bearer = buyer["tokens"]["access_token"]
    start = now()
    status, template = await call(web_stack, "POST", "/admin/coupons", staff(web_stack), {
        "name": f"满100减20 {unique()}", "kind": "threshold", "threshold": 10000, "amount": off,
        "claim_starts_at": iso(start - timedelta(seconds=5)),
        "claim_ends_at": iso(start + timedelta(hours=1)),
        "valid_from": iso(start - timedelta(seconds=5)),
        "valid_until": iso(start + timedelta(days=1)), "total": 10, "per_user": 1})
    assert status == 201, template
    status, pushed = await call(web_stack, "POST", f"/admin/coupons/{template['id']}/push",
                                staff(web_stack), {"user_ids": [user_id]})
    assert status == 200 and pushed["issued"] == 1, pushed
    status, given = await call(web_stack, "POST", f"/admin/members/{user_id}/points",
                               staff(web_stack), {"delta": 1000, "note": "welcome"})
    assert status == 201, given
    status, wallet = await call(web_stack, "GET", "/me/coupons?state=available", bearer)
    assert status == 200 and len(wallet["items"]) == 1, wallet
    coupon_id = wallet["items"][0]["id"]
    status, _ = await call(web_stack, "POST", "/cart/items", bearer, {"sku_id": sku_id, "qty": 1})
    assert status in (200, 201)

    page = await open_page("desktop", "/")
    await sign_in_page(page, buyer, "/#/checkout")
    await page.locator("[data-test=delivery]").select_option("pickup")
    await page.locator(f"input[data-coupon='{coupon_id}']").check()
    await page.locator("[data-test=points]").fill(str(points))
    expected = price - off - points
    await expect(page.locator("[data-test=totals]")).to_contain_text(f"¥{expected / 100:.2f}")
    await page.locator("[data-test=place-order]").click()
    await expect(page).to_have_url(re.compile(r"#/order/co-"))
    await expect(page.locator("[data-test=order-status]")).to_have_text("待付款")
    await expect(page.locator("[data-test=order-total]")).to_have_text(f"¥{expected / 100:.2f}")

    order_id = page.url.split("#/order/")[1]
    order = await wait_order(web_stack, bearer, order_id, "pending_payment")
    assert order["total"] == expected, order
    assert order["discount"] == off and order["points_used"] == points, order
    status, used = await call(web_stack, "GET", "/me/coupons?state=used", bearer)
    assert [c["id"] for c in used["items"]] == [coupon_id], used
    status, member = await call(web_stack, "GET", "/me/membership", bearer)
    assert member["points"] == 1000 - points, member


async def test_cancel_and_confirm_receipt_from_the_order_page(open_page: OpenPage,
                                                              web_stack: Stack) -> None:
    product = await create_product(web_stack, f"Life {unique()}", [{"price": 3000, "stock": 9}])
    sku_id = product["skus"][0]["id"]
    buyer = await register(web_stack)
    bearer = buyer["tokens"]["access_token"]
    unpaid = await checkout_now(web_stack, bearer, sku_id)
    delivered = await delivered_order(web_stack, bearer, sku_id)

    page = await open_page("phone", "/")
    await sign_in_page(page, buyer, f"/#/order/{unpaid}")
    status = page.locator("[data-test=order-status]")
    await expect(status).to_have_text("待付款")
    await page.locator("[data-test=cancel]").click()
    # Asked on the page itself; "keep" changes nothing.
    await page.locator("[data-test=cancel-no]").click()
    await expect(page.locator("[data-test=cancel-confirm]")).to_be_hidden()
    await page.locator("[data-test=cancel]").click()
    await page.locator("[data-test=cancel-yes]").click()
    await expect(status).to_have_text("已取消")
    await expect(page.locator("[data-test=order-action-result]")).to_contain_text("订单已取消")
    await expect(page.locator("[data-test=cancel]")).to_have_count(0)
    await expect(page.locator("[data-test=pay]")).to_have_count(0)
    await expect(page.locator("[data-test=history] li").last).to_contain_text("已取消")
    await wait_order(web_stack, bearer, unpaid, "cancelled", timeout_s=1)

    await page.goto(f"/#/order/{delivered}")
    await expect(status).to_have_text("已送达")
    await page.locator("[data-test=confirm]").click()
    await expect(status).to_have_text("已完成")
    await expect(page.locator("[data-test=order-action-result]")).to_contain_text("已确认收货")
    await expect(page.locator("[data-test=confirm]")).to_have_count(0)
    await expect(page.locator("[data-test=history] li").last).to_contain_text("已完成")
    await shot(page, "store-order-completed")
    await wait_order(web_stack, bearer, delivered, "completed", timeout_s=1)


async def test_after_sales_screen_lists_requests_with_status_and_staff_note(
        open_page: OpenPage, web_stack: Stack) -> None:
    product = await create_product(web_stack, f"After {unique()} 售后",
                                   [{"price": 4500, "stock": 9}])
    buyer = await register(web_stack)
    bearer = buyer["tokens"]["access_token"]
    order_id = await delivered_order(web_stack, bearer, product["skus"][0]["id"])

    page = await open_page("phone", "/")
    await sign_in_page(page, buyer, "/#/after-sales")
    await expect(page.locator("[data-test=as-empty]")).to_be_visible()
    await page.goto(f"/#/order/{order_id}")
    form = page.locator("[data-test=after-sales]")
    await form.locator("select[name=type]").select_option("return")
    await form.locator("textarea[name=reason]").fill("尺码不合适")
    await form.locator("button[type=submit]").click()
    await expect(form).to_contain_text("售后申请已提交")

    # From the account page to the new screen.
    await page.locator("header a[href='#/account']").click()
    await page.locator("nav.tabs a[href='#/after-sales']").click()
    row = page.locator("[data-test=as-list] [data-request]")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-status", "requested")
    await expect(row.locator("[data-test=as-status]")).to_have_text("审核中")
    await expect(row.locator("[data-test=as-type]")).to_have_text("退货退款")
    await expect(row.locator("[data-test=as-order]")).to_have_attribute(
        "href", f"#/order/{order_id}")
    await expect(row).to_contain_text("尺码不合适")
    await shot(page, "store-after-sales")

    status, mine = await call(web_stack, "GET", "/me/after-sales", bearer)
    assert status == 200 and [r["status"] for r in mine["items"]] == ["requested"], mine
    note = f"请先寄回商品 {unique()}"
    request_id = mine["items"][0]["id"]
    status, decided = await call(web_stack, "POST", f"/admin/after-sales/{request_id}/reject",
                                 staff(web_stack), {"note": note})
    assert status == 200, decided
    await page.reload()
    await expect(row).to_have_attribute("data-status", "rejected")
    await expect(row.locator("[data-test=as-status]")).to_have_text("未通过")
    await expect(row.locator("[data-test=as-note]")).to_contain_text(note)
    assert await horizontal_overflow(page) == 0
    await shot(page, "store-after-sales-rejected")
    await row.locator("[data-test=as-order]").click()
    await expect(page.locator("[data-test=order-status]")).to_have_text("已送达")

    desktop = await open_page("desktop", "/", locale="en-US")
    await sign_in_page(desktop, buyer, "/#/after-sales")
    drow = desktop.locator("[data-test=as-list] [data-request]")
    await expect(drow.locator("[data-test=as-status]")).to_have_text("Rejected")
    await expect(drow.locator("[data-test=as-note]")).to_contain_text(f"Reply: {note}")
    await shot(desktop, "store-after-sales")
