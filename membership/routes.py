"""The member's own routes: membership summary, points ledger, daily check-in."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from mall.errors import json_response
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import query_id_cursor, query_limit
from mall.resources import PG, VERIFIER
from membership import checkin, ledger
from membership.levels import level_of

ANY_ROLE = ("customer", "member", "staff", "admin")
AUTH_ERRORS = {401: "unauthorized"}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def parse_limit(raw: str | None) -> int:
    return query_limit(raw, DEFAULT_LIMIT, MAX_LIMIT)


def parse_cursor(raw: str | None) -> int | None:
    return query_id_cursor(raw)


async def membership_view(conn: asyncpg.Connection, user_id: str) -> dict[str, Any]:
    """Level, spending and points of one user, read in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        level = await level_of(conn, user_id)
        points, redeemed = await ledger.spendable(conn, user_id)
    return {"user_id": user_id, **level, "points": points, "redeemed": redeemed}


async def ledger_view(conn: asyncpg.Connection, user_id: str, query: Any) -> dict[str, Any]:
    limit = parse_limit(query.get("limit"))
    before = parse_cursor(query.get("cursor"))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await ledger.ledger_page(conn, user_id, before, limit + 1)
        points, _ = await ledger.spendable(conn, user_id)
    page = rows[:limit]
    return {"balance": points, "items": [ledger.entry_view(r) for r in page],
            "next_cursor": str(page[-1]["id"]) if len(rows) > limit else None}


@api_doc(
    summary="My membership: level, spending, the next level and my points", tag="membership",
    roles=ANY_ROLE, errors=AUTH_ERRORS,
    responses={200: "{user_id, level, name, spent, next_level: {level, name, min_spent, "
                    "missing} | null, points, redeemed}"},
)
async def get_membership(request: web.Request) -> web.Response:
    user = request.app[VERIFIER].from_request(request)
    async with request.app[PG].acquire() as conn:
        return json_response(await membership_view(conn, user.user_id))


@api_doc(
    summary="My points ledger, newest first (keyset pagination), and my balance",
    tag="membership", roles=ANY_ROLE,
    query={"limit": "1-100, default 20", "cursor": "next_cursor of the last page"},
    responses={200: "{balance, items: [{id, delta, reason, order_id, note, created_at}], "
                    "next_cursor}"},
    errors={**AUTH_ERRORS, 422: "invalid_request"},
)
async def get_points(request: web.Request) -> web.Response:
    user = request.app[VERIFIER].from_request(request)
    async with request.app[PG].acquire() as conn:
        return json_response(await ledger_view(conn, user.user_id, request.query))


@api_doc(
    summary="Check in for today (Asia/Shanghai); points grow with the streak: 5 on the first "
            "day, 5 more each following day, 35 from the seventh day on",
    tag="membership", roles=ANY_ROLE, idempotent=True,
    responses={201: "{day, streak, points, balance}"},
    errors={**AUTH_ERRORS, 409: "already_checked_in, idempotency_in_progress",
            422: "invalid_idempotency_key, idempotency_key_reused"},
)
async def post_checkin(request: web.Request) -> web.Response:
    user = request.app[VERIFIER].from_request(request)
    body = await request.read()

    async def run() -> web.Response:
        async with request.app[PG].acquire() as conn, conn.transaction():
            done = await checkin.check_in(conn, user.user_id, checkin.today())
        return json_response({"day": done.day.isoformat(), "streak": done.streak,
                              "points": done.points, "balance": done.balance}, status=201)

    return await idempotent(request, "checkin", user.user_id, body, run)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/me/membership", get_membership)
    app.router.add_get("/api/v1/me/points", get_points)
    app.router.add_post("/api/v1/me/checkin", post_checkin)
