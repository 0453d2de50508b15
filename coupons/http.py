"""The coupon routes: staff manage templates and push them; customers list, grab and hold."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from coupons.issue import Issuer
from coupons.keys import CouponKeys
from coupons.models import NewTemplate, PushBody, TemplateEdit
from coupons.state import ClaimState
from coupons.templates import Templates, template_view
from coupons.wallet import WALLET_STATES, coupon_view, wallet_page
from mall.auth import Principal, require_staff
from mall.errors import decode_body, invalid, json_response
from mall.idempotency import idempotency_key, idempotent
from mall.openapi import api_doc
from mall.params import MAX_ID, path_id
from mall.resources import PG, REDIS, SETTINGS, VERIFIER


@dataclass(frozen=True, slots=True)
class CouponServices:
    templates: Templates
    issuer: Issuer


COUPONS = web.AppKey("coupons", CouponServices)
STAFF_ROLES = ("staff", "admin")
ANY_ROLE = ("customer", "member", "staff", "admin")
AUTH_ERRORS = {401: "unauthorized", 403: "forbidden"}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PAGE_QUERY = {"limit": "1-100, default 20", "cursor": "next_cursor of the previous page"}
TEMPLATE_STATUSES = ("active", "ended")
PUSH_MAX_BODY_BYTES = 1 << 20


async def coupons_ctx(app: web.Application) -> AsyncIterator[None]:
    state = ClaimState(app[REDIS], CouponKeys(app[SETTINGS].namespace),
                       app[SETTINGS].order_view_ttl_s)
    app[COUPONS] = CouponServices(Templates(app[PG], state), Issuer(app[PG], state))
    yield


def _caller(request: web.Request) -> Principal:
    return request.app[VERIFIER].from_request(request)


def _staff(request: web.Request) -> Principal:
    return require_staff(_caller(request))


def _template_id(request: web.Request) -> int:
    return path_id(request, "template_id", "coupon template")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(token: str | None) -> int | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid("cursor is not valid") from None
    prefix, _, digits = raw.partition(":")
    if prefix != "id" or not (digits.isascii() and digits.isdigit()) or len(digits) > 19 \
            or not 1 <= int(digits) <= MAX_ID:
        raise invalid("cursor is not valid")
    return int(digits)


def _page_args(request: web.Request) -> tuple[int | None, int]:
    raw = request.query.get("limit")
    if raw is None:
        limit = DEFAULT_LIMIT
    elif raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT:
        limit = int(raw)
    else:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return decode_cursor(request.query.get("cursor")), limit


def _page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    page = items[:limit]
    next_cursor = encode_cursor(page[-1]["id"]) if len(items) > limit else None
    return {"items": page, "next_cursor": next_cursor}


# -- staff -------------------------------------------------------------------------------------


@api_doc(
    summary="Create a coupon template and open it for claims in its window", tag="coupons-admin",
    request=NewTemplate, roles=STAFF_ROLES, idempotent=True,
    responses={201: "the template"},
    errors={**AUTH_ERRORS, 409: "idempotency_in_progress",
            422: "invalid_request, unknown_scope_ids, idempotency_key_reused",
            503: "unavailable"},
)
async def post_template(request: web.Request) -> web.Response:
    principal = _staff(request)
    body = await request.read()
    template = decode_body(body, NewTemplate)

    async def run() -> web.Response:
        view = await request.app[COUPONS].templates.create(template, principal.user_id)
        return json_response(view, status=201)

    return await idempotent(request, "coupon-templates", principal.user_id, body, run)


@api_doc(
    summary="List coupon templates, newest first (keyset pagination)", tag="coupons-admin",
    roles=STAFF_ROLES, query={"status": "active or ended", **PAGE_QUERY},
    responses={200: "{items: [template], next_cursor}"},
    errors={**AUTH_ERRORS, 422: "invalid_request"},
)
async def get_templates(request: web.Request) -> web.Response:
    _staff(request)
    status = request.query.get("status")
    if status is not None and status not in TEMPLATE_STATUSES:
        raise invalid("status must be active or ended")
    before, limit = _page_args(request)
    rows = await request.app[COUPONS].templates.page(status, before, limit + 1)
    return json_response(_page([template_view(r) for r in rows], limit))


@api_doc(
    summary="A coupon template with its counts", tag="coupons-admin", roles=STAFF_ROLES,
    responses={200: "template, counts {issued, used, available, returned}, "
                    "claim_state {issued, remaining} (Redis)"},
    errors={**AUTH_ERRORS, 404: "not_found"},
)
async def get_template(request: web.Request) -> web.Response:
    _staff(request)
    return json_response(await request.app[COUPONS].templates.get(_template_id(request)))


@api_doc(
    summary="Change a template before its claim window opens", tag="coupons-admin",
    request=TemplateEdit, roles=STAFF_ROLES, responses={200: "the template"},
    errors={**AUTH_ERRORS, 404: "not_found", 409: "claim_started, already_issued",
            422: "invalid_request, unknown_scope_ids"},
)
async def patch_template(request: web.Request) -> web.Response:
    _staff(request)
    template_id = _template_id(request)
    edit = decode_body(await request.read(), TemplateEdit)
    return json_response(await request.app[COUPONS].templates.edit(template_id, edit))


@api_doc(
    summary="Stop claims now; coupons already held stay usable until valid_until",
    tag="coupons-admin", roles=STAFF_ROLES, responses={200: "the template and changed"},
    errors={**AUTH_ERRORS, 404: "not_found"},
)
async def post_end(request: web.Request) -> web.Response:
    _staff(request)
    return json_response(await request.app[COUPONS].templates.end(_template_id(request)))


@api_doc(
    summary="Issue coupons to users or a segment; counts against total and per_user like "
            "claims (the claim window does not apply)",
    tag="coupons-admin", request=PushBody, roles=STAFF_ROLES, idempotent=True,
    responses={200: "{template_id, issued, already_issued, sold_out, limit_reached, ended, "
                    "refused}"},
    errors={**AUTH_ERRORS, 404: "not_found", 409: "ended, idempotency_in_progress",
            422: "invalid_request, unknown_level, idempotency_key_reused"},
)
async def post_push(request: web.Request) -> web.Response:
    principal = _staff(request)
    template_id = _template_id(request)
    # 10,000 user ids do not fit the mall-wide body limit; this route alone takes more.
    body = await request.clone(client_max_size=PUSH_MAX_BODY_BYTES).read()
    push = decode_body(body, PushBody)
    push.check()
    key = idempotency_key(request)

    async def run() -> web.Response:
        return json_response(await request.app[COUPONS].issuer.push(template_id, push, key))

    return await idempotent(request, f"coupon-push:{template_id}", principal.user_id, body, run)


# -- customers ---------------------------------------------------------------------------------


@api_doc(
    summary="Coupon templates that can be claimed now, with how many remain", tag="coupons",
    query=PAGE_QUERY, responses={200: "{items: [template rules, remaining], next_cursor}"},
    errors={422: "invalid_request"},
)
async def get_claimable(request: web.Request) -> web.Response:
    before, limit = _page_args(request)
    items = await request.app[COUPONS].templates.claimable(before, limit + 1)
    return json_response(_page(items, limit))


@api_doc(
    summary="Claim one coupon of a template", tag="coupons", roles=ANY_ROLE, idempotent=True,
    responses={201: "the coupon with its rules and remaining"},
    errors={401: "unauthorized", 403: "not_started, ended", 404: "not_found",
            409: "sold_out, limit_reached", 422: "invalid_idempotency_key", 503: "unavailable"},
)
async def post_claim(request: web.Request) -> web.Response:
    principal = _caller(request)
    template_id = _template_id(request)
    key = idempotency_key(request)
    _, coupon = await request.app[COUPONS].issuer.claim(template_id, principal.user_id, key)
    return json_response(coupon, status=201)


@api_doc(
    summary="The caller's coupons, newest first", tag="coupons", roles=ANY_ROLE,
    query={"state": "available, used or expired", **PAGE_QUERY},
    responses={200: "{items: [coupon with rules], next_cursor}"},
    errors={401: "unauthorized", 422: "invalid_request"},
)
async def get_wallet(request: web.Request) -> web.Response:
    principal = _caller(request)
    state = request.query.get("state")
    if state is not None and state not in WALLET_STATES:
        raise invalid("state must be available, used or expired")
    before, limit = _page_args(request)
    rows = await wallet_page(request.app[PG], principal.user_id, state, before, limit + 1)
    return json_response(_page([coupon_view(r) for r in rows], limit))


def setup_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(coupons_ctx)
    app.router.add_post("/api/v1/admin/coupons", post_template)
    app.router.add_get("/api/v1/admin/coupons", get_templates)
    app.router.add_get("/api/v1/admin/coupons/{template_id}", get_template)
    app.router.add_patch("/api/v1/admin/coupons/{template_id}", patch_template)
    app.router.add_post("/api/v1/admin/coupons/{template_id}/end", post_end)
    app.router.add_post("/api/v1/admin/coupons/{template_id}/push", post_push)
    app.router.add_get("/api/v1/coupons", get_claimable)
    app.router.add_post("/api/v1/coupons/{template_id}/claim", post_claim)
    app.router.add_get("/api/v1/me/coupons", get_wallet)
