"""The back office's catalog pages in headless Chromium against a real `mall serve` + `mall
writer`: staff find an unpublished product in the list of every product, see each SKU's real
stock and sold (units sold through checkout and persisted by the writer), open it with the
stock field holding the real stock, and look users up by e-mail and by phone."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid

from playwright.async_api import expect

from tests.browser.conftest import OpenPage
from tests.browser.office_helpers import (
    ADDRESS,
    PASSWORD,
    bearer,
    call,
    register,
    sign_in_as_staff,
    snap,
)
from tests.stack import Stack


async def sold_then_unpublished(stack: Stack, name: str) -> dict:
    """A product of two SKUs; a customer checks one unit out of the first (persisted by the
    writer), then staff unpublish it."""
    staff = bearer(stack.settings, "setup-staff", "staff")
    product = await call(stack, "POST", "/api/v1/admin/products",
                         {**staff, "Idempotency-Key": uuid.uuid4().hex},
                         {"name": name, "skus": [
                             {"price": 15900, "stock": 6, "attributes": {"颜色": "蓝"}},
                             {"price": 16900, "stock": 2, "attributes": {"颜色": "白"}}]},
                         expect_status=201)
    me = bearer(stack.settings, f"buyer-{uuid.uuid4().hex[:8]}")
    sku = product["skus"][0]["id"]
    await call(stack, "POST", "/api/v1/cart/items", me, {"sku_id": sku, "qty": 1})
    placed = await call(stack, "POST", "/api/v1/checkout",
                        {**me, "Idempotency-Key": uuid.uuid4().hex},
                        {"delivery": "standard", "address": ADDRESS}, expect_status=202)
    deadline = time.monotonic() + 15
    while (await call(stack, "GET", f"/api/v1/orders/{placed['order_id']}", me))[
            "status"] != "pending_payment":
        assert time.monotonic() < deadline, "order not persisted"
        await asyncio.sleep(0.05)
    await call(stack, "POST", f"/api/v1/admin/products/{product['id']}/unpublish", staff)
    return dict(product)


async def test_staff_find_an_unpublished_product_with_its_stock_and_sold_and_look_users_up(
        open_page: OpenPage, web_stack: Stack) -> None:
    name = f"库存测试 Lamp {uuid.uuid4().hex[:6]}"
    product = await sold_then_unpublished(web_stack, name)
    blue, white = (s["id"] for s in product["skus"])
    staff = await register(web_stack, "staff")
    page = await open_page("desktop", "/backoffice/")
    await sign_in_as_staff(page, staff)

    # The list holds every product; searched by part of the name in any case, unpublished only.
    listing = page.locator("[data-test=product-list]")
    await page.get_by_label("搜索").fill(name.split()[1].lower() + " " + name.split()[2])
    await page.get_by_role("combobox", name="上架状态").select_option("false")
    await page.get_by_role("button", name="搜索").click()
    row = listing.locator("tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(name)
    await expect(row).to_contain_text("未上架")
    await expect(row.locator("[data-test=sku-line]")).to_have_text([
        f"#{blue}：库存 6 / 已售 1 / 可售 5", f"#{white}：库存 2 / 已售 0 / 可售 2"])
    # Published only: it is not there.
    await page.get_by_role("combobox", name="上架状态").select_option("true")
    await page.get_by_role("button", name="搜索").click()
    await expect(listing).to_contain_text("暂无数据")
    await snap(page, "backoffice-product-list")

    # Opened from the list: the real stock and sold per SKU, the stock field holds the stock.
    await page.get_by_role("combobox", name="上架状态").select_option("")
    await page.get_by_role("button", name="搜索").click()
    await listing.locator("tr", has_text=name).get_by_role("link", name="打开").click()
    await expect(page.locator("[data-test=published]")).to_have_text("未上架")
    blue_row = page.locator("tr", has_text="颜色=蓝")
    await expect(blue_row.locator("[data-test=sku-stock]")).to_have_text("6")
    await expect(blue_row.locator("[data-test=sku-sold]")).to_have_text("1")
    await expect(blue_row.locator("[data-test=sku-available]")).to_have_text("5")
    await expect(blue_row.get_by_label("总库存（含已售）")).to_have_value("6")
    # Saving the price alone leaves the stock as it is; a new stock is saved and shown.
    await blue_row.get_by_label("价格（元）").fill("149.00")
    await blue_row.get_by_role("button", name="保存").click()
    await expect(blue_row.get_by_role("status")).to_contain_text("库存 6，已售 1")
    await blue_row.get_by_label("总库存（含已售）").fill("9")
    await blue_row.get_by_role("button", name="保存").click()
    await expect(blue_row.locator("[data-test=sku-available]")).to_have_text("8")
    checked = await call(web_stack, "GET", f"/api/v1/admin/products/{product['id']}",
                         bearer(web_stack.settings, "checker", "staff"))
    assert [(s["price"], s["stock"], s["sold"]) for s in checked["skus"]] == [
        (14900, 9, 1), (16900, 2, 0)]
    await snap(page, "backoffice-product-stock")

    # Users by e-mail (any case) and by phone (as people type it).
    customer = await register(web_stack)
    digits = f"139{secrets.randbelow(10**8):08d}"
    by_phone = await call(web_stack, "POST", "/api/v1/auth/register",
                          {"Idempotency-Key": uuid.uuid4().hex},
                          {"phone": digits, "password": PASSWORD}, expect_status=201)
    await page.get_by_role("link", name="用户与角色").click()
    await page.get_by_label("用户 ID、邮箱或手机号").fill(customer["email"].upper())
    await page.get_by_role("button", name="查找").click()
    await expect(page.locator("dl.kv")).to_contain_text(customer["user_id"])
    await expect(page.locator("[data-test=role]")).to_have_text("顾客")
    await page.get_by_label("用户 ID、邮箱或手机号").fill(
        f"{digits[:3]} {digits[3:7]} {digits[7:]}")
    await page.get_by_role("button", name="查找").click()
    await expect(page.locator("dl.kv")).to_contain_text(by_phone["user"]["user_id"])
    await expect(page.locator("dl.kv")).to_contain_text(f"+86{digits}")
    # An id still works; nobody matching says so.
    await page.get_by_label("用户 ID、邮箱或手机号").fill(customer["user_id"])
    await page.get_by_role("button", name="查找").click()
    await expect(page.locator("dl.kv")).to_contain_text(customer["email"])
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    await page.get_by_label("用户 ID、邮箱或手机号").fill(nobody)
    await page.get_by_role("button", name="查找").click()
    await expect(page.get_by_role("alert").first).to_contain_text("未找到")
    await snap(page, "backoffice-user-lookup")
