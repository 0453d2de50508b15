"""The back office's promotion pages in headless Chromium against a real `mall serve` + `mall
writer`: staff edit the member level table and adjust a member's points (a deduction below zero
is refused), create, edit and end price lists (a price above the list price is refused at its
row), and edit a coupon template before its claim window opens (refused after)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.office_helpers import bearer, call, register, sign_in_as_staff, snap
from tests.stack import Stack


async def local_input(page: Page, instant: datetime) -> str:
    """The datetime-local value the browser shows for an instant (its own time zone)."""
    return str(await page.evaluate(
        """(ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T`
          + `${p(d.getHours())}:${p(d.getMinutes())}`; }""", int(instant.timestamp() * 1000)))


def idem(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


async def product(stack: Stack, staff: dict[str, str], name: str, price: int) -> dict[str, Any]:
    return await call(stack, "POST", "/api/v1/admin/products", idem(staff),
                      {"name": name, "skus": [{"price": price, "stock": 20}]}, expect_status=201)


async def test_member_levels_and_points(open_page: OpenPage, web_stack: Stack) -> None:
    checker = bearer(web_stack.settings, "checker", "staff")
    before = (await call(web_stack, "GET", "/api/v1/admin/member-levels", checker))["levels"]
    assert len(before) >= 2
    staff = await register(web_stack, "staff")
    member = f"member-{uuid.uuid4().hex[:8]}"
    page = await open_page("desktop", "/backoffice/#/membership")
    await sign_in_as_staff(page, staff)
    try:
        # Level 1's threshold, through the page.
        new_min = before[1]["min_spent"] + 12_300
        row = page.locator("[data-test=levels] tr[data-level='1']")
        await row.get_by_label("消费门槛（元）").fill(f"{new_min / 100:.2f}")
        await page.get_by_role("button", name="保存等级表").click()
        await expect(page.get_by_role("status").filter(has_text="等级表已保存").first)\
            .to_be_visible()
        levels = (await call(web_stack, "GET", "/api/v1/admin/member-levels", checker))["levels"]
        assert levels[1]["min_spent"] == new_min
        assert [(lv["level"], lv["name"]) for lv in levels] == [
            (lv["level"], lv["name"]) for lv in before]
    finally:
        await call(web_stack, "PUT", "/api/v1/admin/member-levels", checker, {"levels": before})

    # A member: +50 with a reason, then a deduction below zero is refused.
    await page.get_by_label("会员用户 ID").fill(member)
    await page.get_by_role("button", name="查询会员").click()
    await expect(page.locator("[data-test=points]")).to_have_text("0")
    adjust = page.locator("[data-test=adjust-points]")
    await adjust.get_by_label("调整数量（正数增加，负数扣减）").fill("50")
    await adjust.get_by_label("调整原因").fill("客服补偿")
    await adjust.get_by_role("button", name="调整积分").click()
    await expect(adjust.get_by_role("status")).to_contain_text("余额 50")
    await expect(page.locator("[data-test=points]")).to_have_text("50")
    await expect(page.locator("[data-test=member] tr", has_text="客服补偿")).to_contain_text("+50")
    account = await call(web_stack, "GET", f"/api/v1/admin/members/{member}", checker)
    assert account["points"] == 50
    assert [(e["delta"], e["reason"], e["note"]) for e in account["ledger"]["items"]] == [
        (50, "adjust", "客服补偿")]
    await adjust.get_by_label("调整数量（正数增加，负数扣减）").fill("-80")
    await adjust.get_by_label("调整原因").fill("误发")
    await adjust.get_by_role("button", name="调整积分").click()
    await expect(adjust.locator(".notice.error")).to_contain_text("积分不足")
    account = await call(web_stack, "GET", f"/api/v1/admin/members/{member}", checker)
    assert account["points"] == 50 and len(account["ledger"]["items"]) == 1
    await expect(page.locator("[data-test=points]")).to_have_text("50")
    await snap(page, "backoffice-membership")

    phone = await open_page("phone", f"/backoffice/#/membership/{member}")
    await sign_in_as_staff(phone, staff)
    await expect(phone.locator("[data-test=points]")).to_have_text("50")
    await snap(phone, "backoffice-membership")


async def test_price_lists_create_edit_refuse_and_end(open_page: OpenPage,
                                                       web_stack: Stack) -> None:
    checker = bearer(web_stack.settings, "checker", "staff")
    staff = await register(web_stack, "staff")
    tag = uuid.uuid4().hex[:6]
    future = await product(web_stack, checker, f"价目测试 {tag}", 10_000)
    sku = future["skus"][0]["id"]
    # A list that is running now, on another product: the public detail shows its price.
    running_product = await product(web_stack, checker, f"进行中 {tag}", 5_000)
    now = datetime.now(UTC)
    running = await call(web_stack, "POST", "/api/v1/admin/price-lists", idem(checker), {
        "name": f"进行中特价 {tag}", "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "items": [{"sku_id": running_product["skus"][0]["id"], "price": 3_900}]},
        expect_status=201)
    detail = await call(web_stack, "GET", f"/api/v1/products/{running_product['id']}")
    assert detail["skus"][0]["promotion"]["price"] == 3_900

    page = await open_page("desktop", "/backoffice/#/pricing")
    await sign_in_as_staff(page, staff)
    await expect(page.locator(f"[data-test=price-lists] tr[data-id='{running['id']}']"))\
        .to_contain_text("生效中")

    # A list starting in an hour for one SKU.
    starts = now + timedelta(hours=1)
    new = page.locator("[data-test=new-price-list]")
    await new.get_by_label("价目表名称").fill(f"双十二 {tag}")
    await new.get_by_label("生效时间").fill(await local_input(page, starts))
    await new.get_by_label("失效时间").fill(await local_input(page, starts + timedelta(days=1)))
    await new.get_by_label("SKU ID").fill(str(sku))
    await new.get_by_label("特价（元）").fill("80.00")
    await new.get_by_role("button", name="创建").click()
    created = new.get_by_role("status")
    await expect(created).to_contain_text("已创建")
    list_id = int(re.search(r"#(\d+)", await created.inner_text()).group(1))  # type: ignore[union-attr]
    row = page.locator(f"[data-test=price-lists] tr[data-id='{list_id}']")
    await expect(row).to_contain_text(f"双十二 {tag}")
    await expect(row).to_contain_text("未开始")
    made = await call(web_stack, "GET", f"/api/v1/admin/price-lists/{list_id}", checker)
    assert [(i["sku_id"], i["price"], i["list_price"]) for i in made["items"]] == [
        (sku, 8_000, 10_000)]
    assert made["state"] == "upcoming"

    # Edit its price before it starts.
    await row.get_by_role("button", name="修改").click()
    edit = page.locator("[data-test=edit-price-list]")
    await edit.get_by_label("特价（元）").fill("70.00")
    await edit.get_by_role("button", name="保存").click()
    await expect(edit.get_by_role("status")).to_contain_text(f"价目表 #{list_id} 已修改")
    made = await call(web_stack, "GET", f"/api/v1/admin/price-lists/{list_id}", checker)
    assert [(i["sku_id"], i["price"]) for i in made["items"]] == [(sku, 7_000)]
    assert made["state"] == "upcoming" and made["name"] == f"双十二 {tag}"
    await row.get_by_role("button", name="查看").click()
    await expect(page.locator("[data-test=price-list]")).to_contain_text("¥70.00")

    # A price above the list price: the row shows the API's refusal, nothing is created.
    count = len((await call(web_stack, "GET", "/api/v1/admin/price-lists?limit=100",
                            checker))["items"])
    await new.get_by_label("价目表名称").fill(f"太贵 {tag}")
    await new.get_by_label("特价（元）").fill("120.00")
    await new.get_by_role("button", name="创建").click()
    await expect(new.locator("[data-test=item-row] [data-field=price] .field-error")).to_have_text(
        "须低于原价 ¥100.00。")
    await expect(new.locator(".notice.error")).to_contain_text("特价须低于 SKU 原价")
    after = (await call(web_stack, "GET", "/api/v1/admin/price-lists?limit=100",
                        checker))["items"]
    assert len(after) == count and all(p["name"] != f"太贵 {tag}" for p in after)
    await snap(page, "backoffice-pricing")

    # End the running list early: the public product detail drops the promotion.
    running_row = page.locator(f"[data-test=price-lists] tr[data-id='{running['id']}']")
    page.once("dialog", lambda dialog: dialog.accept())
    await running_row.get_by_role("button", name="提前结束").click()
    await expect(running_row).to_contain_text("已结束")
    detail = await call(web_stack, "GET", f"/api/v1/products/{running_product['id']}")
    assert detail["skus"][0]["promotion"] is None
    ended = await call(web_stack, "GET", f"/api/v1/admin/price-lists/{running['id']}", checker)
    assert (ended["status"], ended["state"]) == ("ended", "ended")

    phone = await open_page("phone", "/backoffice/#/pricing")
    await sign_in_as_staff(phone, staff)
    await expect(phone.locator(f"[data-test=price-lists] tr[data-id='{list_id}']"))\
        .to_be_visible()
    await snap(phone, "backoffice-pricing")


async def test_coupon_template_edit_before_claims_open(open_page: OpenPage,
                                                       web_stack: Stack) -> None:
    checker = bearer(web_stack.settings, "checker", "staff")
    staff = await register(web_stack, "staff")
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC).replace(microsecond=0)

    async def template(name: str, claim_starts: datetime) -> dict[str, Any]:
        return await call(web_stack, "POST", "/api/v1/admin/coupons", idem(checker), {
            "name": name, "kind": "threshold", "amount": 1_000, "threshold": 5_000,
            "claim_starts_at": claim_starts.isoformat(),
            "claim_ends_at": (now + timedelta(days=2)).isoformat(),
            "valid_from": now.isoformat(), "valid_until": (now + timedelta(days=9)).isoformat(),
            "total": 100}, expect_status=201)

    later = await template(f"未开领 {tag}", now + timedelta(hours=1, seconds=17))
    opened = await template(f"已开领 {tag}", now - timedelta(minutes=5))
    page = await open_page("desktop", "/backoffice/#/coupons")
    await sign_in_as_staff(page, staff)

    await page.locator("tr", has_text=f"未开领 {tag}").get_by_role("button", name="修改").click()
    edit = page.locator("[data-test=edit-coupon]")
    await edit.get_by_label("发放总量").fill("300")
    await edit.get_by_label("门槛（元）").fill("80")
    await edit.get_by_role("button", name="保存").click()
    await expect(edit.get_by_role("status")).to_contain_text(f"优惠券 #{later['id']} 已修改")
    changed = await call(web_stack, "GET", f"/api/v1/admin/coupons/{later['id']}", checker)
    assert (changed["total"], changed["threshold"], changed["amount"]) == (300, 8_000, 1_000)
    # Fields left alone are not sent: the claim start keeps its seconds.
    assert changed["claim_starts_at"] == later["claim_starts_at"]
    await expect(page.locator("tr", has_text=f"未开领 {tag}")).to_contain_text("300 / 1")

    await page.locator("tr", has_text=f"已开领 {tag}").get_by_role("button", name="修改").click()
    edit = page.locator("[data-test=edit-coupon]")
    await edit.get_by_label("发放总量").fill("500")
    await edit.get_by_role("button", name="保存").click()
    await expect(edit.locator(".notice.error")).to_contain_text("领取已开始，不能修改。")
    unchanged = await call(web_stack, "GET", f"/api/v1/admin/coupons/{opened['id']}", checker)
    assert unchanged["total"] == 100
    await snap(page, "backoffice-coupon-edit")
