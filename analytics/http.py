"""Staff report routes: JSON by default, `?format=csv` for the same table, SVG charts, and a
dashboard page that loads the charts with the caller's bearer token."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from analytics import charts, reports
from analytics.dashboard import dashboard_page
from analytics.params import FORMATS, PERIOD_DOCS, parse_choice
from analytics.reports import Report, ReportFn
from mall.auth import require_staff
from mall.csv_export import csv_body
from mall.errors import json_response
from mall.openapi import api_doc
from mall.resources import PG, VERIFIER

BASE: Final = "/api/v1/admin/reports"
STAFF_ROLES: Final = ("staff", "admin")
ERRORS: Final = {401: "unauthorized", 403: "forbidden", 422: "invalid_request"}
LIST_DOC: Final = {"limit": "entries per list, 1-1000 (default 20)"}
SALES_DOCS: Final = {**PERIOD_DOCS, "granularity": "day (default), week, month or all",
                     "group_by": "category or product (revenue is then the line value)"}


async def run_report(request: web.Request, report: ReportFn, query: Any = None) -> Report:
    require_staff(request.app[VERIFIER].from_request(request))
    async with request.app[PG].acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True):
        return await report(conn, request.query if query is None else query)


def report_handler(name: str, report: ReportFn, summary: str, query: dict[str, str],
                   rows: str) -> Any:
    @api_doc(summary=summary, tag="reports", roles=STAFF_ROLES, query=query,
             responses={200: f"JSON {{..., rows: [{rows}]}}; with format=csv, text/csv of "
                             "the rows (header first)"},
             errors=ERRORS)
    async def handler(request: web.Request) -> web.Response:
        fmt = parse_choice(request.query, "format", FORMATS, "json")
        result = await run_report(request, report)
        if fmt == "csv":
            return web.Response(body=csv_body(result.columns, result.rows), headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}.csv"'})
        return json_response(result.view())

    handler.__name__ = f"get_{name.replace('-', '_')}_report"
    return handler


def svg_response(svg: str) -> web.Response:
    return web.Response(body=svg.encode(), headers={
        "Content-Type": "image/svg+xml; charset=utf-8", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


@api_doc(summary="Revenue per period as an SVG bar chart", tag="reports", roles=STAFF_ROLES,
         query={k: v for k, v in SALES_DOCS.items() if k not in ("format", "group_by")},
         responses={200: "image/svg+xml"}, errors=ERRORS)
async def get_sales_chart(request: web.Request) -> web.Response:
    query = request.query.copy()
    query.popall("group_by", None)
    result = await run_report(request, reports.sales, query)
    unit = result.summary["granularity"]
    title = f"Revenue by {unit}, {result.summary['from'][:10]} to {result.summary['to'][:10]}"
    return svg_response(charts.sales_chart(result.rows, title))


@api_doc(summary="The view, cart, order, paid funnel as an SVG chart", tag="reports",
         roles=STAFF_ROLES, query={k: v for k, v in PERIOD_DOCS.items() if k != "format"},
         responses={200: "image/svg+xml"}, errors=ERRORS)
async def get_funnel_chart(request: web.Request) -> web.Response:
    result = await run_report(request, reports.funnel)
    title = (f"Funnel of signed-in users, {result.summary['from'][:10]} to "
             f"{result.summary['to'][:10]}")
    return svg_response(charts.funnel_chart(result.rows, title))


@api_doc(summary="Report dashboard page (holds no data; its script loads the charts with the "
                 "staff bearer token typed into it)", tag="reports",
         responses={200: "text/html"})
async def get_dashboard(request: web.Request) -> web.Response:
    body, headers = dashboard_page(BASE)
    return web.Response(body=body, headers=headers)


REPORTS: Final = (
    ("sales", reports.sales, "Revenue, orders, units and average order value per period",
     SALES_DOCS, "period, orders, units, revenue, average_order_value"),
    ("flash-sales", reports.flash_sales, "Flash sales starting in the period",
     PERIOD_DOCS, "sale_id, stock, sold, accepted_orders, paid_orders, revenue, buyers, "
     "sold_out_at, seconds_to_sell_out"),
    ("coupons", reports.coupons, "Coupon templates used on orders placed in the period",
     PERIOD_DOCS, "template_id, name, kind, used, discount, orders, revenue"),
    ("funnel", reports.funnel, "Distinct users who viewed, carted, ordered and paid",
     PERIOD_DOCS, "step, users, rate_from_previous, rate_from_first"),
    ("searches", reports.searches, "Top search terms and top terms that found nothing",
     {**PERIOD_DOCS, **LIST_DOC}, "list (top | no_results), term, searches, "
     "no_result_searches"),
    ("inventory", reports.inventory, "Low-stock and out-of-stock SKUs, now",
     {"threshold": "available units at most (default 10)", "category_id": "only this category",
      "limit": "1-10000 (default 1000)", "format": PERIOD_DOCS["format"]},
     "state, sku_id, product_id, product_name, published, stock, sold, available, "
     "flash_sale_reserved"),
    ("logistics", reports.logistics, "Orders placed in the period by status and time since "
     "their last step", PERIOD_DOCS, "status, age (<1h, 1-24h, 1-3d, >3d), orders"),
    ("after-sales", reports.after_sales, "After-sales requests per delivered order, by type, "
     "reason and status", PERIOD_DOCS, "type, reason, status, requests"),
)


def setup_routes(app: web.Application) -> None:
    for name, report, summary, query, rows in REPORTS:
        app.router.add_get(f"{BASE}/{name}", report_handler(name, report, summary, query, rows))
    app.router.add_get(f"{BASE}/sales/chart.svg", get_sales_chart)
    app.router.add_get(f"{BASE}/funnel/chart.svg", get_funnel_chart)
    app.router.add_get(f"{BASE}/dashboard", get_dashboard)
