"""Staff routes: the level table, a member's account, points adjustments."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from aiohttp import web

from mall.auth import Principal, require_staff
from mall.errors import decode_body, invalid, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.resources import PG, VERIFIER
from membership import ledger
from membership.levels import LevelsBody, list_levels, replace_levels
from membership.points import MAX_ADJUST
from membership.routes import ledger_view, membership_view

STAFF_ROLES = ("staff", "admin")
STAFF_ERRORS = {401: "unauthorized", 403: "forbidden"}
_USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AdjustBody(msgspec.Struct, forbid_unknown_fields=True):
    delta: Annotated[int, msgspec.Meta(ge=-MAX_ADJUST, le=MAX_ADJUST)]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

    def check(self) -> None:
        if self.delta == 0:
            raise invalid("delta must not be zero")
        if not self.note.strip() or not self.note.isprintable():
            raise invalid("note must be printable and not blank")


def _staff(request: web.Request) -> Principal:
    return require_staff(request.app[VERIFIER].from_request(request))


def _member_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not _USER_RE.match(user_id):
        raise not_found("member")
    return user_id


@api_doc(
    summary="The member level table", tag="admin", roles=STAFF_ROLES, errors=STAFF_ERRORS,
    responses={200: "{levels: [{level, name, min_spent}]}"},
)
async def get_levels(request: web.Request) -> web.Response:
    _staff(request)
    async with request.app[PG].acquire() as conn:
        return json_response({"levels": await list_levels(conn)})


@api_doc(
    summary="Replace the whole member level table (levels 0, 1, 2, ...; level 0 from 0 fen; "
            "strictly increasing min_spent; distinct names)",
    tag="admin", request=LevelsBody, roles=STAFF_ROLES,
    responses={200: "{levels: [{level, name, min_spent}]}"},
    errors={**STAFF_ERRORS, 422: "invalid_request"},
)
async def put_levels(request: web.Request) -> web.Response:
    _staff(request)
    body = decode_body(await request.read(), LevelsBody)
    body.check()
    async with request.app[PG].acquire() as conn, conn.transaction():
        return json_response({"levels": await replace_levels(conn, body)})


@api_doc(
    summary="A member's level, spending, points and latest ledger rows (zeros for a user who "
            "never had any)", tag="admin", roles=STAFF_ROLES,
    query={"limit": "ledger rows, 1-100, default 20", "cursor": "next_cursor of the last page"},
    responses={200: "{user_id, level, name, spent, next_level, points, redeemed, "
                    "ledger: {balance, items, next_cursor}}"},
    errors={**STAFF_ERRORS, 404: "not_found", 422: "invalid_request"},
)
async def get_member(request: web.Request) -> web.Response:
    _staff(request)
    user_id = _member_id(request)
    async with request.app[PG].acquire() as conn:
        view = await membership_view(conn, user_id)
        view["ledger"] = await ledger_view(conn, user_id, request.query)
    return json_response(view)


@api_doc(
    summary="Adjust a member's points (reason adjust); a deduction may not take the balance "
            f"below zero; |delta| at most {MAX_ADJUST}",
    tag="admin", request=AdjustBody, roles=STAFF_ROLES, idempotent=True,
    responses={201: "{entry: {id, delta, reason, order_id, note, created_at}, balance}"},
    errors={**STAFF_ERRORS, 404: "not_found",
            409: "points_insufficient, idempotency_in_progress",
            422: "invalid_request, invalid_idempotency_key, idempotency_key_reused"},
)
async def post_adjust(request: web.Request) -> web.Response:
    staff = _staff(request)
    user_id = _member_id(request)
    raw = await request.read()
    body = decode_body(raw, AdjustBody)
    body.check()

    async def run() -> web.Response:
        async with request.app[PG].acquire() as conn, conn.transaction():
            entry = await ledger.adjust(conn, user_id, body.delta, body.note, staff.user_id)
            balance, _ = await ledger.spendable(conn, user_id)
        return json_response({"entry": ledger.entry_view(entry), "balance": balance},
                             status=201)

    return await idempotent(request, f"points_adjust:{user_id}", staff.user_id, raw, run)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/member-levels", get_levels)
    app.router.add_put("/api/v1/admin/member-levels", put_levels)
    app.router.add_get("/api/v1/admin/members/{user_id}", get_member)
    app.router.add_post("/api/v1/admin/members/{user_id}/points", post_adjust)
