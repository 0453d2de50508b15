"""The category tree: create, rename or move (never into its own subtree), read it whole."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from msgspec import UNSET

from catalog_api import cache
from catalog_api.http import CATALOG_KEYS, staff
from catalog_api.models import CategoryEdit, NewCategory, clean_name
from mall.errors import ApiError, decode_body, invalid, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import PG, REDIS, SETTINGS

# Moves take this transaction-scoped lock so two moves cannot each pass the cycle check and
# together make a cycle.
TREE_LOCK = 73_051_958

INSERT_CATEGORY = """
INSERT INTO categories (parent_id, name) VALUES ($1, $2) RETURNING id, parent_id, name
"""
SELECT_CATEGORY_FOR_UPDATE = "SELECT id, parent_id, name FROM categories WHERE id = $1 FOR UPDATE"
CATEGORY_EXISTS = "SELECT 1 FROM categories WHERE id = $1"
LOCK_TREE = "SELECT pg_advisory_xact_lock($1)"
# UNION (not UNION ALL) stops at a repeated row, so even a damaged tree cannot loop forever.
ANCESTORS = """
WITH RECURSIVE up AS (
    SELECT id, parent_id FROM categories WHERE id = $1
    UNION
    SELECT c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id
)
SELECT id FROM up
"""
UPDATE_CATEGORY = """
UPDATE categories SET name = $2, parent_id = $3 WHERE id = $1 RETURNING id, parent_id, name
"""
PRODUCTS_IN_SUBTREE = """
WITH RECURSIVE sub AS (
    SELECT id FROM categories WHERE id = $1
    UNION
    SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id
)
SELECT p.id FROM products p JOIN sub ON p.category_id = sub.id
"""
SELECT_ALL = "SELECT id, parent_id, name FROM categories ORDER BY name, id"


def _view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "parent_id": row["parent_id"], "name": row["name"]}


def _exists() -> ApiError:
    return ApiError(409, "category_exists", "a category of that name already exists there")


async def create_category(pool: asyncpg.Pool, new: NewCategory) -> dict[str, Any]:
    name = clean_name(new.name)
    async with pool.acquire() as conn, conn.transaction():
        if new.parent_id is not None and await conn.fetchval(CATEGORY_EXISTS,
                                                             new.parent_id) is None:
            raise invalid("parent_id names no category")
        try:
            row = await conn.fetchrow(INSERT_CATEGORY, new.parent_id, name)
        except asyncpg.UniqueViolationError:
            raise _exists() from None
    return _view(row)


async def edit_category(
    pool: asyncpg.Pool, category_id: int, edit: CategoryEdit
) -> tuple[dict[str, Any], list[int]]:
    """Rename and/or move; returns the category and the products whose detail changed."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK_TREE, TREE_LOCK)
        current = await conn.fetchrow(SELECT_CATEGORY_FOR_UPDATE, category_id)
        if current is None:
            raise not_found("category")
        name = current["name"] if edit.name is UNSET else clean_name(edit.name)
        parent = current["parent_id"] if edit.parent_id is UNSET else edit.parent_id
        if parent is not None and parent != current["parent_id"]:
            ancestors = {r["id"] for r in await conn.fetch(ANCESTORS, parent)}
            if not ancestors:
                raise invalid("parent_id names no category")
            if category_id in ancestors:
                raise ApiError(409, "category_cycle",
                               "a category cannot move under itself or its descendants")
        try:
            row = await conn.fetchrow(UPDATE_CATEGORY, category_id, name, parent)
        except asyncpg.UniqueViolationError:
            raise _exists() from None
        affected = [r["id"] for r in await conn.fetch(PRODUCTS_IN_SUBTREE, category_id)]
    return _view(row), affected


async def category_tree(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(SELECT_ALL)
    nodes = {r["id"]: {**_view(r), "children": []} for r in rows}
    roots: list[dict[str, Any]] = []
    for r in rows:
        parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
        (parent["children"] if parent is not None else roots).append(nodes[r["id"]])
    return roots


@api_doc(
    summary="Create a category", tag="catalog-admin", request=NewCategory, idempotent=True,
    roles=("staff", "admin"), responses={201: "{id, parent_id, name}"},
    errors={401: "unauthorized", 403: "forbidden", 409: "category_exists",
            422: "invalid_request, idempotency_key_reused"},
)
async def post_category(request: web.Request) -> web.Response:
    principal = staff(request)
    body = await request.read()
    new = decode_body(body, NewCategory)

    async def run() -> web.Response:
        return json_response(await create_category(request.app[PG], new), status=201)

    return await idempotent(request, "categories", principal.user_id, body, run)


@api_doc(
    summary="Rename or move a category (parent_id null: to the top)", tag="catalog-admin",
    request=CategoryEdit, roles=("staff", "admin"), responses={200: "{id, parent_id, name}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "category_cycle, category_exists", 422: "invalid_request"},
)
async def patch_category(request: web.Request) -> web.Response:
    staff(request)
    category_id = path_id(request, "category_id", "category")
    edit = decode_body(await request.read(), CategoryEdit)
    app = request.app
    view, affected = await edit_category(app[PG], category_id, edit)
    await cache.invalidate(app[REDIS], app[CATALOG_KEYS], affected,
                           app[SETTINGS].product_cache_ttl_s)
    return json_response(view)


@api_doc(
    summary="The whole category tree", tag="catalog",
    responses={200: "{items: [{id, parent_id, name, children: [...]}]}"},
)
async def get_categories(request: web.Request) -> web.Response:
    return json_response({"items": await category_tree(request.app[PG])})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/categories", post_category)
    app.router.add_patch("/api/v1/admin/categories/{category_id}", patch_category)
    app.router.add_get("/api/v1/categories", get_categories)
