"""What an order line names: its product and the SKU's attributes, read from the catalog at read
time (the writer persists only sku_id, qty and price, and the hot path never reads the catalog).

A SKU or product that no longer exists leaves product_id and product_name null."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

# One order line as JSON, for queries joining order_items i, skus s and products p.
LINE_JSON = """json_build_object('sku_id', i.sku_id, 'qty', i.qty, 'price', i.price,
                  'product_id', s.product_id, 'product_name', p.name,
                  'attributes', coalesce(s.attributes, '{}'::jsonb))"""
LINE_JOINS = """LEFT JOIN skus s ON s.id = i.sku_id
LEFT JOIN products p ON p.id = s.product_id"""
LINES_OF_ORDERS = f"""
SELECT i.order_id, json_agg({LINE_JSON} ORDER BY i.sku_id) AS items
FROM order_items i {LINE_JOINS}
WHERE i.order_id = ANY($1::text[])
GROUP BY i.order_id
"""
SKUS_NAMED = """
SELECT s.id, s.product_id, p.name, s.attributes
FROM skus s JOIN products p ON p.id = s.product_id
WHERE s.id = ANY($1::bigint[])
"""


async def lines_of_orders(pool: asyncpg.Pool, order_ids: list[str]
                          ) -> dict[str, list[dict[str, Any]]]:
    """order id -> its lines, named; an order without lines is absent."""
    if not order_ids:
        return {}
    rows = await pool.fetch(LINES_OF_ORDERS, order_ids)
    return {r["order_id"]: orjson.loads(r["items"]) for r in rows}


async def name_lines(pool: asyncpg.Pool, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines as a queued order carries them ({sku_id, qty, price}), named from the catalog."""
    rows = await pool.fetch(SKUS_NAMED, sorted({int(line["sku_id"]) for line in lines}))
    named = {r["id"]: r for r in rows}
    return [_named(line, named.get(int(line["sku_id"]))) for line in lines]


def _named(line: dict[str, Any], sku: asyncpg.Record | None) -> dict[str, Any]:
    attributes = sku["attributes"] if sku is not None else {}
    if isinstance(attributes, str):  # jsonb as asyncpg returns it
        attributes = orjson.loads(attributes)
    return {"sku_id": line["sku_id"], "qty": line["qty"], "price": line["price"],
            "product_id": sku["product_id"] if sku is not None else None,
            "product_name": sku["name"] if sku is not None else None,
            "attributes": attributes}
