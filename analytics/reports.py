"""The staff reports: each runs its SQL and returns a `Report` (one table plus a summary)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import asyncpg

from analytics import queries
from analytics.params import (
    GRANULARITIES,
    REPORT_TZ_NAME,
    Period,
    parse_choice,
    parse_int,
    parse_optional_id,
    parse_period,
)

GROUPS: Final = ("category", "product")
MAX_GROUP_ROWS: Final = 10_000
MAX_LIST: Final = 1_000
AGE_BUCKETS: Final = ("<1h", "1-24h", "1-3d", ">3d")
FUNNEL_STEPS: Final = ("view", "cart", "order", "paid")


@dataclass(slots=True)
class Report:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {**self.summary, "rows": self.rows}


def average(total: int, count: int) -> int:
    """Integer fen, rounded half up."""
    return (2 * total + count) // (2 * count) if count else 0


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows_of(records: list[asyncpg.Record], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{name: cell(r[name]) for name in columns} for r in records]


def _period_summary(period: Period, **extra: Any) -> dict[str, Any]:
    return {**period.view(), "timezone": REPORT_TZ_NAME, "currency": "CNY", **extra}


async def sales(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    granularity = parse_choice(query, "granularity", GRANULARITIES, "day")
    group_by = parse_choice(query, "group_by", GROUPS, None)
    summary = _period_summary(period, granularity=granularity, group_by=group_by)
    if group_by is None:
        records = await conn.fetch(queries.SALES, period.start, period.end, granularity)
        columns: tuple[str, ...] = ("period", "orders", "units", "revenue",
                                    "average_order_value")
        rows = [{"period": r["period"].isoformat(), "orders": r["orders"], "units": r["units"],
                 "revenue": r["revenue"], "average_order_value": average(r["revenue"],
                                                                         r["orders"])}
                for r in records]
        revenue, orders = sum(r["revenue"] for r in rows), sum(r["orders"] for r in rows)
        summary["totals"] = {"orders": orders, "units": sum(r["units"] for r in rows),
                             "revenue": revenue, "average_order_value": average(revenue, orders)}
        return Report(columns, rows, summary)
    sql = queries.SALES_BY_CATEGORY if group_by == "category" else queries.SALES_BY_PRODUCT
    records = await conn.fetch(sql, period.start, period.end, granularity, MAX_GROUP_ROWS + 1)
    key, name = f"{group_by}_id", f"{group_by}_name"
    columns = ("period", key, name, "orders", "units", "revenue")
    rows = [{"period": r["period"].isoformat(), key: r["key"], name: r["name"],
             "orders": r["orders"], "units": r["units"], "revenue": r["revenue"]}
            for r in records[:MAX_GROUP_ROWS]]
    summary["truncated"] = len(records) > MAX_GROUP_ROWS
    summary["revenue_basis"] = "line value (qty x price) before order discounts and refunds"
    return Report(columns, rows, summary)


async def flash_sales(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    records = await conn.fetch(queries.FLASH_SALES, period.start, period.end, MAX_GROUP_ROWS)
    columns = ("sale_id", "sku_id", "product_name", "price", "stock", "sold", "starts_at",
               "ends_at", "accepted_orders", "paid_orders", "revenue", "buyers", "sold_out_at",
               "seconds_to_sell_out")
    rows = []
    for r in records:
        sold_out = r["sold_out_at"]
        seconds = (max((sold_out - r["starts_at"]).total_seconds(), 0.0)
                   if sold_out is not None else None)
        rows.append({**{c: cell(r[c]) for c in columns[:-1]}, "seconds_to_sell_out": seconds})
    return Report(columns, rows, _period_summary(period))


async def coupons(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    records = await conn.fetch(queries.COUPONS, period.start, period.end, MAX_GROUP_ROWS)
    columns = ("template_id", "name", "kind", "used", "discount", "orders", "revenue")
    return Report(columns, rows_of(records, columns), _period_summary(period))


async def funnel(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    counts = await conn.fetchrow(queries.FUNNEL, period.start, period.end)
    columns = ("step", "users", "rate_from_previous", "rate_from_first")
    rows = []
    for i, step in enumerate(FUNNEL_STEPS):
        users = int(counts[step])
        previous = int(counts[FUNNEL_STEPS[i - 1]]) if i else users
        rows.append({"step": step, "users": users,
                     "rate_from_previous": rate(users, previous) if i else None,
                     "rate_from_first": rate(users, int(counts[FUNNEL_STEPS[0]]))})
    return Report(columns, rows, _period_summary(period))


async def searches(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    limit = parse_int(query, "limit", 20, 1, MAX_LIST)
    records = await conn.fetch(queries.SEARCHES, period.start, period.end, limit)
    columns = ("list", "term", "searches", "no_result_searches")
    return Report(columns, rows_of(records, columns), _period_summary(period))


async def inventory(conn: asyncpg.Connection, query: Any) -> Report:
    threshold = parse_int(query, "threshold", 10, 0, 10**9)
    category_id = parse_optional_id(query, "category_id")
    limit = parse_int(query, "limit", 1000, 1, MAX_GROUP_ROWS)
    records = await conn.fetch(queries.INVENTORY, threshold, category_id, limit + 1)
    columns = ("state", "sku_id", "product_id", "product_name", "published", "stock", "sold",
               "available", "flash_sale_reserved")
    rows = [{"state": "out_of_stock" if r["available"] <= 0 else "low_stock",
             **{c: r[c] for c in columns[1:]}} for r in records[:limit]]
    summary = {"threshold": threshold, "category_id": category_id,
               "truncated": len(records) > limit,
               "out_of_stock": sum(r["state"] == "out_of_stock" for r in rows),
               "low_stock": sum(r["state"] == "low_stock" for r in rows)}
    return Report(columns, rows, summary)


async def logistics(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    records = await conn.fetch(queries.LOGISTICS, period.start, period.end)
    counts = {(r["status"], r["age"]): int(r["orders"]) for r in records}
    statuses = sorted({status for status, _ in counts})
    columns = ("status", "age", "orders")
    rows = [{"status": s, "age": a, "orders": counts.get((s, a), 0)}
            for s in statuses for a in AGE_BUCKETS]
    by_status = {s: sum(counts.get((s, a), 0) for a in AGE_BUCKETS) for s in statuses}
    return Report(columns, rows, _period_summary(period, age_buckets=list(AGE_BUCKETS),
                                                 by_status=by_status))


async def after_sales(conn: asyncpg.Connection, query: Any) -> Report:
    period = parse_period(query)
    delivered = int(await conn.fetchval(queries.DELIVERED_ORDERS, period.start, period.end))
    records = await conn.fetch(queries.AFTER_SALES, period.start, period.end)
    columns = ("type", "reason", "status", "requests")
    rows = rows_of(records, columns)
    requests = sum(r["requests"] for r in rows)
    by_status: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["requests"]
        by_type[r["type"]] = by_type.get(r["type"], 0) + r["requests"]
    return Report(columns, rows, _period_summary(
        period, delivered_orders=delivered, requests=requests, rate=rate(requests, delivered),
        by_status=by_status, by_type=by_type))


ReportFn = Callable[[asyncpg.Connection, Any], Awaitable[Report]]
