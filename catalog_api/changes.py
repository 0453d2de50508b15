"""The append-only log of catalog changes: who changed what, when, from what to what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from catalog_api.http import query_int, staff
from mall.errors import json_response, not_found
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import PG

INSERT_CHANGES = """
INSERT INTO catalog_changes (product_id, sku_id, actor, field, old_value, new_value)
SELECT product_id, sku_id, $3, field, old_value::jsonb, new_value::jsonb
FROM unnest($1::bigint[], $2::bigint[], $4::text[], $5::text[], $6::text[])
    WITH ORDINALITY AS t(product_id, sku_id, field, old_value, new_value, n)
ORDER BY n
"""
SELECT_CHANGES = """
SELECT id, sku_id, actor, changed_at, field, old_value::text AS old_value,
       new_value::text AS new_value
FROM catalog_changes
WHERE product_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
"""
PRODUCT_EXISTS = "SELECT 1 FROM products WHERE id = $1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Change:
    product_id: int
    field: str
    old: Any
    new: Any
    sku_id: int | None = None


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def record(conn: asyncpg.Connection, actor: str, changes: list[Change]) -> None:
    """Append the changes inside the caller's transaction."""
    if not changes:
        return
    await conn.execute(
        INSERT_CHANGES,
        [c.product_id for c in changes], [c.sku_id for c in changes], actor,
        [c.field for c in changes], [_json(c.old) for c in changes],
        [_json(c.new) for c in changes],
    )


@api_doc(
    summary="The change log of a product, newest first", tag="catalog-admin",
    roles=("staff", "admin"),
    query={"limit": f"1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
           "before": "next_cursor of the previous page"},
    responses={200: "{items: [{id, sku_id, actor, changed_at, field, old_value, new_value}], "
                    "next_cursor}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found", 422: "invalid_request"},
)
async def get_changes(request: web.Request) -> web.Response:
    staff(request)
    product_id = path_id(request, "product_id", "product")
    limit = query_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    before = query_int(request, "before", None, 2**62)
    pool = request.app[PG]
    if await pool.fetchval(PRODUCT_EXISTS, product_id) is None:
        raise not_found("product")
    rows = await pool.fetch(SELECT_CHANGES, product_id, before, limit)
    items = [
        {"id": r["id"], "sku_id": r["sku_id"], "actor": r["actor"],
         "changed_at": r["changed_at"].isoformat(), "field": r["field"],
         "old_value": orjson.loads(r["old_value"]) if r["old_value"] else None,
         "new_value": orjson.loads(r["new_value"]) if r["new_value"] else None}
        for r in rows
    ]
    next_cursor = str(items[-1]["id"]) if len(items) == limit else None
    return json_response({"items": items, "next_cursor": next_cursor})
