"""Typed app keys of the accounts package and the context that builds its services."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from accounts.addresses import PgAddressBook
from accounts.codes import CodeSender, CodeStore
from accounts.guard import LoginGuard
from accounts.keys import AccountKeys
from accounts.service import AuthService
from mall.crypto import data_cipher, warn_if_development_key
from mall.ports import ADDRESS_BOOK
from mall.resources import PG, REDIS, SETTINGS

# The sender of one-time codes: set when the app is built, so it can be replaced before start.
CODE_SENDER = web.AppKey("accounts_code_sender", CodeSender)
AUTH = web.AppKey("accounts_auth", AuthService)


async def accounts_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, redis = app[SETTINGS], app[REDIS]
    warn_if_development_key(settings)
    keys = AccountKeys(settings.namespace)
    guard = LoginGuard(redis, keys, settings.login_max_failures, settings.login_ip_max_failures,
                       settings.login_lockout_s)
    codes = CodeStore(redis, keys, settings.jwt_secret, settings.otp_ttl_s)
    app[AUTH] = AuthService(app[PG], settings, guard, codes, app[CODE_SENDER])
    # Set before later packages' contexts run, so checkout finds it when it starts.
    app[ADDRESS_BOOK] = PgAddressBook(app[PG], data_cipher(settings))
    yield
