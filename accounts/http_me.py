"""The signed-in user's own profile and shipping addresses.

The user always comes from the bearer token, never from the URL or the body, and addresses
are looked up by (id, user_id): another user's address answers 404 like a missing one.
"""

from __future__ import annotations

from aiohttp import web

from accounts import addresses
from accounts.models import AddressBody, AddressPatch, ProfilePatch
from accounts.users import SELECT_BY_ID, update_profile, user_view
from mall.crypto import DataCipher, data_cipher
from mall.errors import decode_body, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import PG, SETTINGS, VERIFIER

ANY_ROLE = ("customer", "member", "staff", "admin")
USER = "{user_id, phone, email, role, nickname, avatar_url, created_at}"
ADDRESS = ("{id, recipient, phone, province, city, district, line, postal_code, is_default, "
           "created_at, updated_at}")


def _cipher(request: web.Request) -> DataCipher:
    return data_cipher(request.app[SETTINGS])


def _address_id(request: web.Request) -> int:
    return path_id(request, "address_id", "address")


@api_doc(summary="The caller's profile", tag="accounts", roles=ANY_ROLE,
         responses={200: USER}, errors={401: "unauthorized", 404: "not_found"})
async def get_me(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    row = await request.app[PG].fetchrow(SELECT_BY_ID, principal.user_id)
    if row is None:
        raise not_found("account")
    return json_response(user_view(row, _cipher(request)))


@api_doc(summary="Change the caller's nickname or avatar", tag="accounts", roles=ANY_ROLE,
         request=ProfilePatch, responses={200: USER},
         errors={401: "unauthorized", 404: "not_found", 422: "invalid_request"})
async def patch_me(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    patch = decode_body(await request.read(), ProfilePatch)
    row = await update_profile(request.app[PG], principal.user_id, patch)
    if row is None:
        raise not_found("account")
    return json_response(user_view(row, _cipher(request)))


@api_doc(summary="The caller's addresses, newest first", tag="accounts", roles=ANY_ROLE,
         responses={200: f"{{items: [{ADDRESS}]}}"}, errors={401: "unauthorized"})
async def list_addresses(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    items = await addresses.list_addresses(request.app[PG], _cipher(request), principal.user_id)
    return json_response({"items": items})


@api_doc(summary="Add an address (the first one becomes the default)", tag="accounts",
         roles=ANY_ROLE, request=AddressBody, idempotent=True, responses={201: ADDRESS},
         errors={401: "unauthorized", 404: "not_found (no such account)",
                 409: "address_limit_reached, idempotency_in_progress",
                 422: "invalid_request, idempotency_key_reused, invalid_idempotency_key"})
async def post_address(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    raw = await request.read()
    body = decode_body(raw, AddressBody)
    async def run() -> web.Response:
        address = await addresses.create_address(app[PG], _cipher(request), principal.user_id,
                                                  body)
        return json_response(address, status=201)

    return await idempotent(request, "addresses", principal.user_id, raw, run)


@api_doc(summary="One of the caller's addresses", tag="accounts", roles=ANY_ROLE,
         responses={200: ADDRESS}, errors={401: "unauthorized", 404: "not_found"})
async def get_address(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    address_id = _address_id(request)
    return json_response(
        await addresses.get_address(request.app[PG], _cipher(request), principal.user_id,
                                    address_id))


@api_doc(summary="Change one of the caller's addresses", tag="accounts", roles=ANY_ROLE,
         request=AddressPatch, responses={200: ADDRESS},
         errors={401: "unauthorized", 404: "not_found", 422: "invalid_request"})
async def patch_address(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    address_id = _address_id(request)
    patch = decode_body(await request.read(), AddressPatch)
    return json_response(await addresses.update_address(
        request.app[PG], _cipher(request), principal.user_id, address_id, patch))


@api_doc(summary="Delete an address (a deleted default passes to the newest remaining one)",
         tag="accounts", roles=ANY_ROLE, responses={204: "deleted"},
         errors={401: "unauthorized", 404: "not_found"})
async def delete_address(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    address_id = _address_id(request)
    await addresses.delete_address(request.app[PG], principal.user_id, address_id)
    return web.Response(status=204)


@api_doc(summary="Make an address the caller's default", tag="accounts", roles=ANY_ROLE,
         responses={200: ADDRESS}, errors={401: "unauthorized", 404: "not_found"})
async def post_default(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    address_id = _address_id(request)
    return json_response(
        await addresses.make_default(request.app[PG], _cipher(request), principal.user_id,
                                     address_id))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/me", get_me)
    app.router.add_patch("/api/v1/me", patch_me)
    app.router.add_get("/api/v1/me/addresses", list_addresses)
    app.router.add_post("/api/v1/me/addresses", post_address)
    app.router.add_get("/api/v1/me/addresses/{address_id}", get_address)
    app.router.add_patch("/api/v1/me/addresses/{address_id}", patch_address)
    app.router.add_delete("/api/v1/me/addresses/{address_id}", delete_address)
    app.router.add_post("/api/v1/me/addresses/{address_id}/default", post_default)
