"""Product search: text, category subtree, tag, price and stock filters, five keyset-paged sorts.

Text matching: a case-insensitive substring match (`ILIKE`) served by the trigram GIN index
for queries of three characters or more; queries without CJK characters also match misspelt
words by trigram word similarity (`<%`). pg_trgm treats a run of CJK characters as one word
(a CJK name has no spaces), so similarity cannot find a CJK word inside a name: those queries
match by substring only. A trigram needs three characters, so queries of one or two
characters are narrowed by the GIN index on `name_grams` (every 1- and 2-character piece of
the name) and confirmed by the same ILIKE.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from analytics.events import record
from catalog_api.search_params import MAX_Q, SORTS, SearchQuery, encode_cursor, parse
from mall.errors import json_response
from mall.openapi import api_doc
from mall.resources import PG

SHORT_QUERY = 2

# Fragments of the one search statement; `{}` marks where a `$n` parameter goes.
SUBTREE = """subtree AS (
    SELECT id FROM categories WHERE id = {}
    UNION
    SELECT c.id FROM categories c JOIN subtree s ON c.parent_id = s.id
)"""
# Units sold per product, in one pass over skus and flash_sales (sort=sales only). Checkout
# moves these counters on its hot path, so they are summed here rather than kept on products.
SALES_CTE = """sales AS (
    SELECT s.product_id, sum(s.sold + coalesce(f.sold, 0)) AS units
    FROM skus s
    LEFT JOIN (SELECT sku_id, sum(sold) AS sold FROM flash_sales GROUP BY sku_id) f
        ON f.sku_id = s.id
    GROUP BY s.product_id
)"""
SALES_JOIN = "LEFT JOIN sales ON sales.product_id = p.id"
LISTED = "p.published AND p.min_price IS NOT NULL"
IN_SUBTREE = "p.category_id IN (SELECT id FROM subtree)"
HAS_TAG = "p.tags @> ARRAY[{}::text]"
PRICE_AT_LEAST = "p.min_price >= {}"
PRICE_AT_MOST = "p.min_price <= {}"
IN_STOCK = "EXISTS (SELECT 1 FROM skus s WHERE s.product_id = p.id AND s.stock > s.sold)"
SHORT_TEXT = "p.name_grams @> ARRAY[lower({0}::text)] AND p.name ILIKE {1}"
LONG_TEXT = "p.name ILIKE {1}"
FUZZY_TEXT = "(p.name ILIKE {1} OR {0}::text <% p.name)"
CJK_START = "\u2e80"  # CJK radicals onwards: kana, hangul and ideographs all sort above
RELEVANCE = ("round(((CASE WHEN p.name ILIKE {1} THEN 1 ELSE 0 END)"
             " + word_similarity({0}::text, p.name))::numeric, 6)")
SORT_KEYS = {"price_asc": "p.min_price", "price_desc": "p.min_price",
             "newest": "p.created_at", "sales": "coalesce(sales.units, 0)"}
DESCENDING = {"relevance": True, "price_asc": False, "price_desc": True, "newest": True,
              "sales": True}
SEARCH = """{with_clause}
SELECT page.*, stats.available, stats.sales
FROM (
    SELECT * FROM (
        SELECT p.id, p.name, p.category_id, p.tags, p.image_urls[1] AS image_url,
               p.min_price, p.created_at, {sort_key} AS sort_key
        FROM products p {join}
        WHERE {where}
    ) candidates
    {after}
    ORDER BY sort_key {direction}, id {direction}
    LIMIT {limit}
) page
CROSS JOIN LATERAL (
    SELECT coalesce(sum(s.stock - s.sold), 0) AS available,
           coalesce(sum(s.sold + coalesce(
               (SELECT sum(f.sold) FROM flash_sales f WHERE f.sku_id = s.id), 0)), 0) AS sales
    FROM skus s WHERE s.product_id = page.id
) stats
ORDER BY page.sort_key {direction}, page.id {direction}
"""
AFTER_DESC = "WHERE (sort_key, id) < ({}, {})"
AFTER_ASC = "WHERE (sort_key, id) > ({}, {})"

class Statement:
    """Collects arguments and hands out their `$n` placeholders."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def bind(self, fragment: str, *values: Any) -> str:
        marks = []
        for value in values:
            self.args.append(value)
            marks.append(f"${len(self.args)}")
        return fragment.format(*marks)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_condition(q: str) -> str:
    if len(q) <= SHORT_QUERY:
        return SHORT_TEXT
    return LONG_TEXT if max(q) >= CJK_START else FUZZY_TEXT


def build(search: SearchQuery) -> tuple[str, list[Any]]:
    """The statement text (assembled from the constants above only) and its arguments."""
    st = Statement()
    ctes = [st.bind(SUBTREE, search.category_id)] if search.category_id else []
    join = ""
    if search.sort == "sales":
        ctes.append(SALES_CTE)
        join = SALES_JOIN
    where = [LISTED]
    if search.category_id:
        where.append(IN_SUBTREE)
    if search.tag:
        where.append(st.bind(HAS_TAG, search.tag))
    if search.min_price is not None:
        where.append(st.bind(PRICE_AT_LEAST, search.min_price))
    if search.max_price is not None:
        where.append(st.bind(PRICE_AT_MOST, search.max_price))
    if search.in_stock:
        where.append(IN_STOCK)
    sort_key = SORT_KEYS.get(search.sort, "")
    if search.q:
        condition = text_condition(search.q)
        uses_q = condition != LONG_TEXT or search.sort == "relevance"
        q_mark = st.bind("{}::text", search.q) if uses_q else ""
        pattern_mark = st.bind("{}::text", f"%{escape_like(search.q)}%")
        where.append(condition.format(q_mark, pattern_mark))
        if search.sort == "relevance":
            sort_key = RELEVANCE.format(q_mark, pattern_mark)
    descending = DESCENDING[search.sort]
    after = ""
    if search.after is not None:
        after = st.bind(AFTER_DESC if descending else AFTER_ASC, *search.after)
    limit = st.bind("{}", search.limit + 1)
    text = SEARCH.format(
        with_clause="WITH RECURSIVE " + ",\n".join(ctes) if ctes else "", join=join,
        sort_key=sort_key, where=" AND ".join(where), after=after,
        direction="DESC" if descending else "ASC", limit=limit,
    )
    return text, st.args


async def run_search(pool: asyncpg.Pool, search: SearchQuery) -> dict[str, Any]:
    text, args = build(search)
    rows = await pool.fetch(text, *args)
    rows, more = rows[: search.limit], len(rows) > search.limit
    items = [_item(r) for r in rows]
    next_cursor = encode_cursor(search, rows[-1]["sort_key"], rows[-1]["id"]) if more else None
    return {"items": items, "next_cursor": next_cursor}


def _item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "category_id": row["category_id"],
        "tags": list(row["tags"]), "image_url": row["image_url"],
        "price_from": row["min_price"], "currency": "CNY",
        "available": int(row["available"]), "sales": int(row["sales"]),
        "created_at": row["created_at"].isoformat(),
    }


@api_doc(
    summary="Search published products", tag="catalog",
    query={"q": f"text, 1-{MAX_Q} characters (Chinese or English)",
           "category_id": "this category and its descendants", "tag": "exact tag",
           "min_price": "lowest SKU price at least (fen)",
           "max_price": "lowest SKU price at most (fen)",
           "in_stock": "true: only products with units available",
           "sort": " | ".join(SORTS) + " (default: relevance with q, else newest)",
           "limit": "1-100 (default 20)", "cursor": "next_cursor of the previous page"},
    responses={200: "{items: [{id, name, category_id, tags, image_url, price_from, currency, "
                    "available, sales, created_at}], next_cursor}"},
    errors={422: "invalid_request"},
)
async def get_products(request: web.Request) -> web.Response:
    search = parse(request.query)
    found = await run_search(request.app[PG], search)
    if search.q and search.after is None:  # a search, not the next page of one
        record(request.app, "search", query=search.q, results=len(found["items"]))
    return json_response(found)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/products", get_products)
