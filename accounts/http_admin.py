"""Staff views of accounts and the admin-only role change."""

from __future__ import annotations

import re

from aiohttp import web

from accounts.identity import parse_login
from accounts.models import RoleBody
from accounts.users import SELECT_BY_ID, change_role, find_by_login, user_view
from mall.auth import require_staff
from mall.crypto import data_cipher
from mall.errors import ApiError, decode_body, invalid, json_response, not_found
from mall.openapi import api_doc
from mall.resources import PG, SETTINGS, VERIFIER

_USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_LOGIN_LENGTH = 254  # as LoginText, the log-in body's field
USER = "{user_id, phone, email, role, nickname, avatar_url, created_at}"


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not _USER_ID_RE.match(user_id):
        raise not_found("user")
    return user_id


@api_doc(summary="One user's account", tag="admin", roles=("staff", "admin"),
         responses={200: USER}, errors={401: "unauthorized", 403: "forbidden", 404: "not_found"})
async def get_user(request: web.Request) -> web.Response:
    require_staff(request.app[VERIFIER].from_request(request))
    row = await request.app[PG].fetchrow(SELECT_BY_ID, _user_id(request))
    if row is None:
        raise not_found("user")
    return json_response(user_view(row, data_cipher(request.app[SETTINGS])))


@api_doc(
    summary="Find a user by e-mail or phone (the forms sign-up accepts), through the same "
            "look-up as log-in (phones by their blind index)",
    tag="admin", roles=("staff", "admin"),
    query={"login": "an e-mail address or a phone number (E.164, or national with default "
                    "region CN)"},
    responses={200: USER},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found (nobody has it)",
            422: "invalid_request (login missing, repeated or not an e-mail or phone)"},
)
async def get_user_by_login(request: web.Request) -> web.Response:
    require_staff(request.app[VERIFIER].from_request(request))
    unknown = sorted(set(request.query) - {"login"})
    if unknown:
        raise invalid(f"unknown parameter: {unknown[0]}")
    raw = request.query.getall("login", [])
    if len(raw) != 1 or not 1 <= len(raw[0]) <= MAX_LOGIN_LENGTH:
        raise invalid("login is required, once: an e-mail address or a phone number")
    login = parse_login(raw[0])
    cipher = data_cipher(request.app[SETTINGS])
    row = await find_by_login(request.app[PG], login, cipher)
    if row is None:
        raise not_found("user")
    return json_response(user_view(row, cipher))


@api_doc(
    summary="Set a user's role; their refresh tokens are revoked so they sign in again "
            "with the new role (access tokens already issued keep the old role until expiry)",
    tag="admin", roles=("admin",), request=RoleBody, responses={200: USER},
    errors={401: "unauthorized",
            403: "forbidden (not an admin, own role, granting admin, changing an admin)",
            404: "not_found", 422: "invalid_request"},
)
async def put_role(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this action needs the admin role")
    user_id = _user_id(request)
    body = decode_body(await request.read(), RoleBody)
    row = await change_role(request.app[PG], principal, user_id, body.role)
    return json_response(user_view(row, data_cipher(request.app[SETTINGS])))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/users", get_user_by_login)
    app.router.add_get("/api/v1/admin/users/{user_id}", get_user)
    app.router.add_put("/api/v1/admin/users/{user_id}/role", put_role)
