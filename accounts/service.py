"""Signing up and signing in: passwords, one-time codes, token rotation and log-out.

Wrong password, wrong code and unknown account all answer the same 401, so the log-in routes
never reveal which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from accounts import tokens
from accounts.codes import CodeSender, CodeStore
from accounts.guard import LoginGuard
from accounts.identity import Login, normalize_email, normalize_phone, parse_login
from accounts.models import RegisterBody
from accounts.passwords import hash_password, needs_rehash, verify_password
from accounts.tokens import TokenPair
from accounts.users import UPDATE_PASSWORD_HASH, find_by_login, insert_user, user_view
from mall.crypto import DataCipher, data_cipher
from mall.errors import ApiError, invalid
from mall.settings import Settings


@dataclass(frozen=True, slots=True)
class Session:
    user: asyncpg.Record
    tokens: TokenPair
    cipher: DataCipher

    def view(self) -> dict[str, Any]:
        return {"user": user_view(self.user, self.cipher), "tokens": self.tokens.view()}


def invalid_credentials(what: str) -> ApiError:
    return ApiError(401, "invalid_credentials", f"login or {what} is incorrect")


def registration_login(body: RegisterBody) -> Login:
    if (body.phone is None) == (body.email is None):
        raise invalid("give exactly one of phone and email")
    if body.phone is not None:
        return Login("phone", normalize_phone(body.phone))
    assert body.email is not None
    return Login("email", normalize_email(body.email))


class AuthService:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, guard: LoginGuard,
                 codes: CodeStore, sender: CodeSender) -> None:
        self._pool = pool
        self._settings = settings
        self._guard = guard
        self._codes = codes
        self._sender = sender
        self._cipher = data_cipher(settings)

    async def register(self, body: RegisterBody, login: Login) -> Session:
        password_hash = await hash_password(body.password)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await insert_user(conn, login, password_hash, body.nickname, self._cipher)
            if row is None:
                raise ApiError(409, "account_exists",
                               f"an account with this {login.kind} already exists")
            pair = await tokens.issue_pair(conn, self._settings, row["user_id"], row["role"])
        return Session(row, pair, self._cipher)

    async def login_with_password(self, raw_login: str, password: str, ip: str) -> Session:
        login = parse_login(raw_login)
        await self._guard.reserve(ip, login.value)  # before any password is verified
        row = await find_by_login(self._pool, login, self._cipher)
        ok = await verify_password(row["password_hash"] if row else None, password)
        if row is None or not ok:
            raise invalid_credentials("password")
        await self._guard.succeeded(ip, login.value)
        if needs_rehash(row["password_hash"]):
            new_hash = await hash_password(password)
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(UPDATE_PASSWORD_HASH, row["user_id"], new_hash)
        return await self._start_session(row)

    async def send_code(self, raw_login: str) -> None:
        """Send a code when the account exists; the answer is the same either way."""
        login = parse_login(raw_login)
        cooldown = await self._codes.start_cooldown(login.value)
        if cooldown is not None:
            raise ApiError(429, "code_recently_sent",
                           "a code was sent to this destination recently; wait before asking again",
                           headers={"Retry-After": str(cooldown.retry_after_s)})
        if await find_by_login(self._pool, login, self._cipher) is None:
            return
        code = await self._codes.issue(login.value)
        try:
            await self._sender.send(login.value, code)
        except BaseException:
            await self._codes.discard(login.value)
            raise

    async def login_with_code(self, raw_login: str, code: str, ip: str) -> Session:
        login = parse_login(raw_login)
        # A code allows few attempts by itself; the IP counter stops guessing across accounts.
        await self._guard.reserve(ip)
        if not await self._codes.verify(login.value, code):
            raise invalid_credentials("code")
        row = await find_by_login(self._pool, login, self._cipher)
        if row is None:
            raise invalid_credentials("code")
        await self._guard.succeeded(ip, login.value)
        return await self._start_session(row)

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await tokens.rotate(self._pool, self._settings, refresh_token)

    async def logout(self, refresh_token: str) -> None:
        await tokens.revoke(self._pool, refresh_token)

    async def _start_session(self, row: asyncpg.Record) -> Session:
        async with self._pool.acquire() as conn, conn.transaction():
            pair = await tokens.issue_pair(conn, self._settings, row["user_id"], row["role"])
        return Session(row, pair, self._cipher)
