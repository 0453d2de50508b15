"""Routes that sign users up and in, rotate their tokens and sign them out."""

from __future__ import annotations

from aiohttp import web

from accounts.keys import digest
from accounts.models import (
    CodeLoginBody,
    CodeRequestBody,
    PasswordLoginBody,
    RefreshBody,
    RegisterBody,
)
from accounts.resources import AUTH
from accounts.service import registration_login
from mall.errors import decode_body, json_response
from mall.idempotency import idempotent
from mall.openapi import api_doc

# A replayed sign-up answer holds a token pair: keep it only as long as a client may retry.
REGISTER_REPLAY_TTL_S = 600
SESSION = "{user: {user_id, phone, email, role, nickname, avatar_url, created_at}, tokens: " \
          "{access_token, token_type, expires_in, refresh_token, refresh_expires_in}}"
TOKENS = "{tokens: {access_token, token_type, expires_in, refresh_token, refresh_expires_in}}"


def client_ip(request: web.Request) -> str:
    """The peer's address; forwarded-for headers are not trusted."""
    return request.remote or "unknown"


@api_doc(
    summary="Sign up with a phone number or an e-mail address and a password", tag="accounts",
    request=RegisterBody, idempotent=True, responses={201: SESSION},
    errors={409: "account_exists, idempotency_in_progress",
            422: "invalid_request, idempotency_key_reused, invalid_idempotency_key"},
)
async def register(request: web.Request) -> web.Response:
    app = request.app
    raw = await request.read()
    body = decode_body(raw, RegisterBody)
    login = registration_login(body)
    async def run() -> web.Response:
        session = await app[AUTH].register(body, login)
        return json_response(session.view(), status=201)

    return await idempotent(request, "accounts-register", digest(login.value), raw, run,
                            ttl_s=REGISTER_REPLAY_TTL_S)


@api_doc(
    summary="Sign in with a password", tag="accounts", request=PasswordLoginBody,
    responses={200: SESSION},
    errors={401: "invalid_credentials", 422: "invalid_request",
            429: "too_many_attempts (Retry-After)"},
)
async def login(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), PasswordLoginBody)
    session = await request.app[AUTH].login_with_password(body.login, body.password,
                                                          client_ip(request))
    return json_response(session.view())


@api_doc(
    summary="Send a one-time log-in code to a phone number or e-mail address", tag="accounts",
    request=CodeRequestBody,
    responses={202: '{"status": "sent"} (the same whether or not the account exists)'},
    errors={422: "invalid_request", 429: "code_recently_sent (Retry-After)"},
)
async def send_code(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), CodeRequestBody)
    await request.app[AUTH].send_code(body.login)
    return json_response({"status": "sent"}, status=202)


@api_doc(
    summary="Sign in with a one-time code", tag="accounts", request=CodeLoginBody,
    responses={200: SESSION},
    errors={401: "invalid_credentials", 422: "invalid_request",
            429: "too_many_attempts (Retry-After)"},
)
async def login_with_code(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), CodeLoginBody)
    session = await request.app[AUTH].login_with_code(body.login, body.code, client_ip(request))
    return json_response(session.view())


@api_doc(
    summary="Exchange a refresh token for a new token pair (the old one is revoked)",
    tag="accounts", request=RefreshBody, responses={200: TOKENS},
    errors={401: "invalid_refresh_token (a revoked token revokes all of the user's tokens)",
            422: "invalid_request"},
)
async def refresh(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), RefreshBody)
    pair = await request.app[AUTH].refresh(body.refresh_token)
    return json_response({"tokens": pair.view()})


@api_doc(
    summary="Sign out: revoke a refresh token", tag="accounts", request=RefreshBody,
    responses={204: "revoked (also when it was unknown or already revoked)"},
    errors={422: "invalid_request"},
)
async def logout(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), RefreshBody)
    await request.app[AUTH].logout(body.refresh_token)
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/register", register)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/codes", send_code)
    app.router.add_post("/api/v1/auth/login/code", login_with_code)
    app.router.add_post("/api/v1/auth/refresh", refresh)
    app.router.add_post("/api/v1/auth/logout", logout)
