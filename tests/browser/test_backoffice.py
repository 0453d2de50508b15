"""The back office in headless Chromium against a real `mall serve` + `mall writer`: staff sign
in through the page, create a product and a flash sale, ship an order; customers are refused;
a staff member who is not an admin cannot change roles; report charts render."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.office_helpers import (
    bearer,
    call,
    paid_order,
    register,
    sign_in,
    sign_in_as_staff,
    snap,
)
from tests.stack import Stack


async def local_input(page: Page, instant: datetime) -> str:
    """The datetime-local value the browser shows for an instant (its own time zone)."""
    return str(await page.evaluate(
        """(ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T`
          + `${p(d.getHours())}:${p(d.getMinutes())}`; }""", int(instant.timestamp() * 1000)))


async def test_staff_creates_a_product_and_a_flash_sale_then_ships_an_order(
        open_page: OpenPage, web_stack: Stack) -> None:
    staff = await register(web_stack, "staff")
    page = await open_page("desktop", "/backoffice/")
    await snap(page, "backoffice-signin")
    await sign_in_as_staff(page, staff)

    # A product with one SKU, through the page.
    name = f"秒杀耳机 {uuid.uuid4().hex[:6]}"
    new_product = page.locator("[data-test=new-product]")
    await new_product.get_by_label("名称").fill(name)
    await new_product.get_by_label("价格（元）").fill("199.00")
    await new_product.get_by_label("库存").fill("50")
    await new_product.get_by_label("规格（如 颜色=红, 尺码=L）").fill("颜色=黑")
    await new_product.get_by_role("button", name="创建").click()
    await expect(page.get_by_role("status").filter(has_text="已创建").first).to_be_visible()
    await expect(page).to_have_url(re.compile(r"#/products/\d+$"))
    product_id = int(page.url.rsplit("/", 1)[1])
    staff_auth = bearer(web_stack.settings, "checker", "staff")
    product = await call(web_stack, "GET", f"/api/v1/products/{product_id}", staff_auth)
    assert product["name"] == name and product["published"] is True
    assert [(s["price"], s["available"], s["attributes"]) for s in product["skus"]] == [
        (19900, 50, {"颜色": "黑"})]
    sku_id = product["skus"][0]["id"]
    await expect(page.get_by_text("商品 #" + str(product_id), exact=True)).to_be_visible()
    # Unpublish and publish again; change the SKU's price and stock.
    await page.get_by_role("button", name="下架").click()
    await expect(page.locator("[data-test=published]")).to_have_text("未上架")
    hidden = await call(web_stack, "GET", f"/api/v1/products/{product_id}", staff_auth)
    assert hidden["published"] is False
    await page.get_by_role("button", name="上架").click()
    await expect(page.locator("[data-test=published]")).to_have_text("已上架")
    sku_row = page.locator("tr", has_text="颜色=黑")
    await sku_row.get_by_label("价格（元）").fill("189.00")
    await sku_row.get_by_label("总库存（含已售）").fill("60")
    await sku_row.get_by_role("button", name="保存").click()
    await expect(sku_row.get_by_role("status")).to_contain_text("库存 60")
    product = await call(web_stack, "GET", f"/api/v1/products/{product_id}", staff_auth)
    assert product["published"] is True
    assert (product["skus"][0]["price"], product["skus"][0]["available"]) == (18900, 60)
    await snap(page, "backoffice-product")

    # A flash sale on that SKU, with local times converted to ISO 8601 with an offset.
    starts = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    ends = starts + timedelta(hours=3)
    await page.get_by_role("link", name="秒杀活动").click()
    form = page.locator("[data-test=new-sale]")
    await form.get_by_label("SKU ID").fill(str(sku_id))
    await form.get_by_label("秒杀价（元）").fill("99.50")
    await form.get_by_label("秒杀库存").fill("10")
    await form.get_by_label("每人限购").fill("2")
    await form.get_by_label("开始时间").fill(await local_input(page, starts))
    await form.get_by_label("需要入场令牌（防机器人）").check()
    # Checked in the page first (a missing field), then by the API (end before start): each
    # refusal is shown at its field.
    await form.get_by_role("button", name="创建").click()
    await expect(form.locator("[data-field=ends_at] .field-error")).to_have_text("请选择时间。")
    await form.get_by_label("结束时间").fill(await local_input(page, starts - timedelta(hours=1)))
    await form.get_by_role("button", name="创建").click()
    await expect(form.locator("[data-field=ends_at] .field-error")).to_contain_text(
        "ends_at must be after starts_at")
    await expect(form.get_by_role("alert").first).to_contain_text("输入有误")
    await form.get_by_label("结束时间").fill(await local_input(page, ends))
    await form.get_by_role("button", name="创建").click()
    notice = form.get_by_role("status").filter(has_text="已创建")
    await expect(notice).to_be_visible()
    sale_id = int(re.search(r"#(\d+)", await notice.inner_text()).group(1))  # type: ignore[union-attr]
    listed = await call(web_stack, "GET", "/api/v1/admin/flash-sales?state=scheduled&limit=100",
                        staff_auth)
    sale = next(s for s in listed["items"] if s["id"] == sale_id)
    assert (sale["sku_id"], sale["price"], sale["stock"], sale["per_user_limit"],
            sale["requires_token"]) == (sku_id, 9950, 10, 2, True)
    assert datetime.fromisoformat(sale["starts_at"]) == starts
    assert datetime.fromisoformat(sale["ends_at"]) == ends
    pg = await asyncpg.connect(web_stack.settings.database_url)
    try:
        row = await pg.fetchrow("SELECT sku_id, price, stock, per_user_limit, starts_at, ends_at,"
                                " requires_token FROM flash_sales WHERE id = $1", sale_id)
    finally:
        await pg.close()
    assert tuple(row) == (sku_id, 9950, 10, 2, starts, ends, True)
    # The sale is listed with its state on the page.
    await expect(page.locator("tr", has_text=name).get_by_text("未开始")).to_be_visible()
    await snap(page, "backoffice-sales")

    # Ship a paid order with a tracking number; the list and the order show the buyer and
    # the product's name.
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    order_id = await paid_order(web_stack, buyer)
    await page.get_by_role("link", name="订单").click()
    row = page.locator("tr", has=page.get_by_role("link", name=order_id))
    await expect(row.locator("[data-test=order-buyer]")).to_have_text(buyer)
    await expect(row.locator("[data-test=order-products]")).to_have_text("旅行箱 Suitcase × 1")
    await page.get_by_role("link", name=order_id).click()
    await expect(page.locator("[data-test=order-status]")).to_have_text("已支付")
    await expect(page.locator("[data-test=order-buyer]")).to_have_text(buyer)
    await expect(page.locator("[data-test=line-product]")).to_have_text(["旅行箱 Suitcase"])
    await expect(page.locator("address")).to_contain_text("王五")
    await expect(page.locator("dl.kv")).to_contain_text("¥129.00")
    await page.get_by_label("快递公司").fill("顺丰速运")
    await page.get_by_label("运单号").fill("SF1234567890")
    await page.get_by_role("button", name="发货").click()
    await expect(page.get_by_role("status").filter(has_text="SF1234567890").first).to_be_visible()
    order = await call(web_stack, "GET", f"/api/v1/orders/{order_id}", staff_auth)
    assert order["status"] == "shipped"
    assert (order["shipment"]["carrier"], order["shipment"]["tracking_number"]) == (
        "顺丰速运", "SF1234567890")
    await expect(page.locator("[data-test=order-status]")).to_have_text("已发货")
    await expect(page.get_by_role("button", name="标记已送达")).to_be_visible()
    await snap(page, "backoffice-order")


async def test_a_customer_is_refused_at_sign_in(open_page: OpenPage, web_stack: Stack) -> None:
    customer = await register(web_stack)
    page = await open_page("phone", "/backoffice/")
    await sign_in(page, customer["email"])
    await expect(page.get_by_role("alert").first).to_contain_text("不是员工或管理员")
    await expect(page.get_by_role("button", name="登录")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('mall.backoffice')") is None
    await snap(page, "backoffice-refused")
    # Wrong password: the API's code in readable words.
    await sign_in(page, customer["email"], "wrong-password")
    await expect(page.get_by_role("alert").first).to_contain_text("账号或密码错误")


async def test_staff_who_is_not_admin_sees_the_role_change_refused(
        open_page: OpenPage, web_stack: Stack) -> None:
    staff = await register(web_stack, "staff")
    other = await register(web_stack)
    page = await open_page("desktop", "/backoffice/")
    await sign_in_as_staff(page, staff)
    await page.get_by_role("link", name="用户与角色").click()
    await page.get_by_label("用户 ID").fill(other["user_id"])
    await page.get_by_role("button", name="查找").click()
    await expect(page.get_by_text(other["email"]).first).to_be_visible()
    await expect(page.locator("[data-test=role]")).to_have_text("顾客")
    await page.get_by_role("combobox", name="角色").select_option("member")
    await page.get_by_role("button", name="保存").click()
    await expect(page.get_by_role("alert").first).to_contain_text("没有权限")
    user = await call(web_stack, "GET", f"/api/v1/admin/users/{other['user_id']}",
                      bearer(web_stack.settings, "checker", "staff"))
    assert user["role"] == "customer"
    # The language switch: the same refusal in English.
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("link", name="Users & roles")).to_be_visible()
    await expect(page.locator("[data-test=role]")).to_have_text("Customer")
    await snap(page, "backoffice-users")
    # The refusal is in the audit log, found by its kind and actor.
    await page.get_by_role("link", name="Audit log").click()
    await page.get_by_role("combobox", name="Kind").select_option("permission_denied")
    await page.get_by_label("Actor id").fill(staff["user_id"])
    await page.get_by_role("button", name="Search").click()
    rows = page.locator("table.data tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(f"PUT /api/v1/admin/users/{other['user_id']}/role")
    await expect(rows.first).to_contain_text("Permission denied")


async def test_report_charts_render_and_phone_screens(open_page: OpenPage,
                                                      web_stack: Stack) -> None:
    staff = await register(web_stack, "staff")
    page = await open_page("desktop", "/backoffice/#/reports")
    await sign_in_as_staff(page, staff)
    for chart in ("sales-chart", "funnel-chart"):
        img = page.locator(f"img[data-test={chart}]")
        await expect(img).to_have_attribute("src", re.compile(r"^blob:"))
        await page.wait_for_function(
            "(el) => el.complete && el.naturalWidth > 0", arg=await img.element_handle())
    await snap(page, "backoffice-reports")

    phone = await open_page("phone", "/backoffice/")
    await sign_in_as_staff(phone, staff)
    nav = phone.locator("nav")
    await expect(nav).to_be_hidden()
    for link, name in (("商品", "products"), ("秒杀活动", "sales"), ("订单", "orders"),
                       ("报表", "reports"), ("审计日志", "audit")):
        await phone.get_by_role("button", name="菜单").click()
        await nav.get_by_role("link", name=link, exact=True).click()
        await expect(nav).to_be_hidden()
        await expect(phone.locator("main h1")).to_be_visible()
        if name == "audit":
            await expect(phone.locator("table.data tbody tr").first).to_be_visible()
        await snap(phone, f"backoffice-{name}")


async def test_coupons_after_sales_sale_tools_and_csv_export(open_page: OpenPage,
                                                             web_stack: Stack) -> None:
    settings = web_stack.settings
    checker = bearer(settings, "checker", "staff")
    staff = await register(web_stack, "staff")
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    # Two delivered orders, each with a refund request; and a sale that has not started.
    requests = []
    for _ in range(2):
        order_id = await paid_order(web_stack, buyer)
        await call(web_stack, "POST", f"/api/v1/admin/orders/{order_id}/ship", checker,
                   {"carrier": "EMS", "tracking_number": "EMS-0001"})
        await call(web_stack, "POST", f"/api/v1/admin/orders/{order_id}/deliver", checker)
        made = await call(web_stack, "POST", f"/api/v1/orders/{order_id}/after-sales",
                          {**bearer(settings, buyer), "Idempotency-Key": uuid.uuid4().hex},
                          {"type": "refund", "reason": "不想要了", "photo_urls": []},
                          expect_status=201)
        requests.append((order_id, made["id"]))
    product = await call(web_stack, "POST", "/api/v1/admin/products",
                         {**checker, "Idempotency-Key": uuid.uuid4().hex},
                         {"name": "预热测试", "skus": [{"price": 5000, "stock": 40}]},
                         expect_status=201)
    starts = datetime.now(UTC) + timedelta(hours=5)
    sale = await call(web_stack, "POST", "/api/v1/admin/flash-sales",
                      {**checker, "Idempotency-Key": uuid.uuid4().hex},
                      {"sku_id": product["skus"][0]["id"], "price": 2500, "stock": 10,
                       "starts_at": starts.isoformat(),
                       "ends_at": (starts + timedelta(hours=1)).isoformat()},
                      expect_status=201)

    page = await open_page("desktop", "/backoffice/#/aftersales")
    await sign_in_as_staff(page, staff)

    # After-sales: approve the first request, reject the second (a note is required).
    first = page.locator("tr", has_text=requests[0][0])
    await first.get_by_role("button", name="同意").click()
    await expect(page.get_by_role("status").filter(has_text="已同意").first).to_be_visible()
    await expect(first).to_have_count(0)  # the list of open requests was reloaded
    second = page.locator("tr", has_text=requests[1][0])
    await second.get_by_role("button", name="拒绝").click()
    await expect(second.get_by_text("拒绝需要填写备注。")).to_be_visible()
    await second.get_by_label("备注").fill("商品已拆封")
    await second.get_by_role("button", name="拒绝").click()
    await expect(page.get_by_role("status").filter(has_text="已拒绝").first).to_be_visible()
    refunded = await call(web_stack, "GET", f"/api/v1/orders/{requests[0][0]}", checker)
    assert refunded["status"] == "refunded"
    decided = await call(web_stack, "GET", "/api/v1/admin/after-sales?limit=100", checker)
    by_id = {r["id"]: r for r in decided["items"]}
    assert by_id[requests[1][1]]["status"] == "rejected"
    assert by_id[requests[1][1]]["note"] == "商品已拆封"

    # Coupons: create a threshold coupon, then end its claims.
    await page.get_by_role("link", name="优惠券").click()
    soon = datetime.now(UTC) + timedelta(hours=1)
    await page.get_by_label("名称").fill("满100减20")
    await page.get_by_label("减免金额（元）").fill("20")
    await page.get_by_label("门槛（元）").fill("100")
    await page.get_by_label("领取开始").fill(await local_input(page, soon))
    await page.get_by_label("领取结束").fill(await local_input(page, soon + timedelta(days=2)))
    await page.get_by_label("有效期起").fill(await local_input(page, soon))
    await page.get_by_label("有效期止").fill(await local_input(page, soon + timedelta(days=9)))
    await page.get_by_label("发放总量").fill("100")
    await page.get_by_role("button", name="创建").click()
    created = page.get_by_role("status").filter(has_text="已创建").first
    await expect(created).to_be_visible()
    coupon_id = int(re.search(r"#(\d+)", await created.inner_text()).group(1))  # type: ignore[union-attr]
    coupon = await call(web_stack, "GET", f"/api/v1/admin/coupons/{coupon_id}", checker)
    assert (coupon["kind"], coupon["amount"], coupon["threshold"], coupon["total"]) == (
        "threshold", 2000, 10000, 100)
    # Push it to one customer, then end its claims.
    await page.locator("tr", has_text="满100减20").get_by_role("button", name="推送").click()
    push = page.locator("section", has_text=f"推送优惠券 #{coupon_id}")
    await push.get_by_role("combobox", name="人群").select_option("user_ids")
    await push.get_by_label("用户 ID（逗号分隔）").fill(buyer)
    await push.get_by_role("button", name="推送").click()
    await expect(push.get_by_role("status")).to_contain_text("已发放 1")
    await page.locator("tr", has_text="满100减20").get_by_role("button", name="停止领取").click()
    await expect(page.get_by_role("status").filter(has_text="已停止领取").first).to_be_visible()
    assert (await call(web_stack, "GET", f"/api/v1/admin/coupons/{coupon_id}",
                       checker))["status"] == "ended"
    await snap(page, "backoffice-coupons")

    # Flash-sale tools: report, edit before the start, warm up.
    await page.get_by_role("link", name="秒杀活动").click()
    row = page.locator("tr", has_text="预热测试")
    await row.get_by_role("button", name="报告").click()
    await expect(page.locator("[data-test=report]")).to_contain_text("剩余")
    await row.get_by_role("button", name="修改").click()
    edit = page.locator("section", has_text=f"修改秒杀 #{sale['id']}")
    await edit.get_by_label("秒杀库存").fill("8")
    await edit.get_by_role("button", name="保存").click()
    await expect(page.get_by_role("status").filter(has_text="已修改").first).to_be_visible()
    listed = await call(web_stack, "GET", "/api/v1/admin/flash-sales?limit=100", checker)
    assert next(s for s in listed["items"] if s["id"] == sale["id"])["stock"] == 8
    await page.locator("tr", has_text="预热测试").get_by_role("button", name="预热").click()
    await expect(page.get_by_role("status").filter(has_text="已预热").first).to_be_visible()

    # Orders: the CSV export downloads through the token.
    await page.get_by_role("link", name="订单").click()
    async with page.expect_download() as info:
        await page.get_by_role("button", name="导出 CSV").click()
    download = await info.value
    text = open(await download.path(), encoding="utf-8").read()  # noqa: ASYNC230
    assert text.startswith("order_id,") and requests[0][0] in text
