"""Coupon templates in PostgreSQL: create, list, read with counts, change, end.

Every change to the claim rules reaches Redis while the template's row is locked, Redis first:
a failure on the way undoes the PostgreSQL side, so Redis never hands out coupons under rules
PostgreSQL does not hold.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from coupons.models import TEMPLATE_FIELDS, NewTemplate, TemplateEdit
from coupons.state import ClaimState
from mall.errors import ApiError, not_found

log = logging.getLogger(__name__)

COLUMNS = ("id, name, kind, threshold, amount, percent_off, max_discount, claim_starts_at, "
           "claim_ends_at, valid_from, valid_until, total, per_user, scope, scope_ids, "
           "stackable, status, created_by, created_at")
INSERT_TEMPLATE = f"""
INSERT INTO coupon_templates (name, kind, threshold, amount, percent_off, max_discount,
    claim_starts_at, claim_ends_at, valid_from, valid_until, total, per_user, scope, scope_ids,
    stackable, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
RETURNING {COLUMNS}
"""
DELETE_TEMPLATE = "DELETE FROM coupon_templates WHERE id = $1"
SELECT_TEMPLATE = f"SELECT {COLUMNS} FROM coupon_templates WHERE id = $1"
LOCK_TEMPLATE = f"SELECT {COLUMNS}, now() AS now FROM coupon_templates WHERE id = $1 FOR UPDATE"
UPDATE_TEMPLATE = f"""
UPDATE coupon_templates SET name = $2, kind = $3, threshold = $4, amount = $5,
    percent_off = $6, max_discount = $7, claim_starts_at = $8, claim_ends_at = $9,
    valid_from = $10, valid_until = $11, total = $12, per_user = $13, scope = $14,
    scope_ids = $15, stackable = $16
WHERE id = $1
RETURNING {COLUMNS}
"""
END_TEMPLATE = f"UPDATE coupon_templates SET status = 'ended' WHERE id = $1 RETURNING {COLUMNS}"
LIST_TEMPLATES = f"""
SELECT {COLUMNS} FROM coupon_templates
WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""
CLAIMABLE_NOW = f"""
SELECT {COLUMNS} FROM coupon_templates
WHERE status = 'active' AND claim_starts_at <= now() AND claim_ends_at > now()
  AND ($1::bigint IS NULL OR id < $1)
ORDER BY id DESC LIMIT $2
"""
TEMPLATE_COUNTS = """
SELECT count(*) AS issued,
       count(*) FILTER (WHERE state = 'used') AS used,
       count(*) FILTER (WHERE state = 'available') AS available,
       coalesce(sum(returned_count), 0) AS returned
FROM user_coupons WHERE template_id = $1
"""
ANY_ISSUED = "SELECT EXISTS (SELECT 1 FROM user_coupons WHERE template_id = $1)"
MISSING_CATEGORIES = """
SELECT coalesce(array_agg(i ORDER BY i), '{}') FROM unnest($1::bigint[]) AS i
WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = i)
"""
MISSING_PRODUCTS = """
SELECT coalesce(array_agg(i ORDER BY i), '{}') FROM unnest($1::bigint[]) AS i
WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = i)
"""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def rules_view(row: Any) -> dict[str, Any]:
    """What a coupon of this template takes off, where, and when it may be used."""
    return {
        "name": row["name"], "kind": row["kind"], "threshold": row["threshold"],
        "amount": row["amount"], "percent_off": row["percent_off"],
        "max_discount": row["max_discount"], "scope": row["scope"],
        "scope_ids": list(row["scope_ids"]), "stackable": row["stackable"],
        "valid_from": _iso(row["valid_from"]), "valid_until": _iso(row["valid_until"]),
    }


def template_view(row: Any) -> dict[str, Any]:
    view = {name: row[name] for name in TEMPLATE_FIELDS}
    view["scope_ids"] = list(row["scope_ids"])
    for name in ("claim_starts_at", "claim_ends_at", "valid_from", "valid_until", "created_at"):
        view[name] = _iso(row[name])
    return {"id": row["id"], **view, "status": row["status"], "created_by": row["created_by"],
            "created_at": view["created_at"]}


def as_new_template(row: Any) -> NewTemplate:
    fields = {name: row[name] for name in TEMPLATE_FIELDS}
    fields["scope_ids"] = list(row["scope_ids"])
    return NewTemplate(**fields)


def _args(t: NewTemplate) -> list[Any]:
    return [t.name, t.kind, t.threshold, t.amount, t.percent_off, t.max_discount,
            t.claim_starts_at, t.claim_ends_at, t.valid_from, t.valid_until, t.total,
            t.per_user, t.scope, t.scope_ids, t.stackable]


async def check_scope(conn: asyncpg.Connection, t: NewTemplate) -> None:
    if t.scope == "all":
        return
    query = MISSING_CATEGORIES if t.scope == "categories" else MISSING_PRODUCTS
    missing = await conn.fetchval(query, t.scope_ids)
    if missing:
        raise ApiError(422, "unknown_scope_ids", f"these {t.scope} do not exist",
                       details={"missing": list(missing)})


class Templates:
    def __init__(self, pool: asyncpg.Pool, state: ClaimState) -> None:
        self._pool = pool
        self.state = state

    async def create(self, t: NewTemplate, created_by: str) -> dict[str, Any]:
        t.check(datetime.now(UTC))
        async with self._pool.acquire() as conn, conn.transaction():
            await check_scope(conn, t)
            row = await conn.fetchrow(INSERT_TEMPLATE, *_args(t), created_by)
        try:
            await self.state.create(row)
        except Exception:
            # Nothing can have been issued from a template Redis never held.
            log.exception("could not load coupon template %s into Redis; undoing it", row["id"])
            await self._pool.execute(DELETE_TEMPLATE, row["id"])
            raise ApiError(503, "unavailable", "the template could not be created; try again",
                           headers={"Retry-After": "1"}) from None
        return template_view(row)

    async def get(self, template_id: int) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(SELECT_TEMPLATE, template_id)
            if row is None:
                raise not_found("coupon template")
            counts = await conn.fetchrow(TEMPLATE_COUNTS, template_id)
        live = (await self.state.counts([template_id]))[template_id]
        return {**template_view(row), "counts": dict(counts),
                "claim_state": None if live is None else
                {"issued": live[0], "remaining": max(live[1] - live[0], 0)}}

    async def page(self, status: str | None, before_id: int | None,
                   limit: int) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(LIST_TEMPLATES, status, before_id, limit))

    async def claimable(self, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(CLAIMABLE_NOW, before_id, limit)
        live = await self.state.counts([r["id"] for r in rows])
        items = []
        for row in rows:
            counts = live[row["id"]]
            remaining = row["total"] if counts is None else max(counts[1] - counts[0], 0)
            items.append({**rules_view(row), "id": row["id"], "per_user": row["per_user"],
                          "total": row["total"], "remaining": remaining,
                          "claim_starts_at": _iso(row["claim_starts_at"]),
                          "claim_ends_at": _iso(row["claim_ends_at"])})
        return items

    async def edit(self, template_id: int, edit: TemplateEdit) -> dict[str, Any]:
        patched_over: asyncpg.Record | None = None
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                current = await conn.fetchrow(LOCK_TEMPLATE, template_id)
                if current is None:
                    raise not_found("coupon template")
                if current["status"] != "active" or current["now"] >= current["claim_starts_at"]:
                    raise ApiError(409, "claim_started",
                                   "a template can only change before its claim window opens")
                changed = edit.apply_to(as_new_template(current))
                changed.check(current["now"])
                await check_scope(conn, changed)
                if await conn.fetchval(ANY_ISSUED, template_id):
                    raise _already_issued()
                row = await conn.fetchrow(UPDATE_TEMPLATE, template_id, *_args(changed))
                if not await self.state.patch(row):
                    raise _already_issued()
                patched_over = current
        except BaseException:
            if patched_over is not None:
                # The commit failed after Redis took the new rules: give it the old ones back.
                await self.state.patch(patched_over)
            raise
        return template_view(row)

    async def end(self, template_id: int) -> dict[str, Any]:
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(LOCK_TEMPLATE, template_id)
            if current is None:
                raise not_found("coupon template")
            changed = current["status"] != "ended"
            await self.state.end(template_id)
            row = await conn.fetchrow(END_TEMPLATE, template_id) if changed else current
        return {**template_view(row), "changed": changed}


def _already_issued() -> ApiError:
    return ApiError(409, "already_issued",
                    "coupons of this template were already issued; its rules are fixed")

