"""The users table: creating accounts, finding them by log-in, profiles and roles."""

from __future__ import annotations

import secrets
from datetime import UTC
from typing import Any

import asyncpg
import msgspec

from accounts.identity import Login
from accounts.models import ProfilePatch
from accounts.tokens import revoke_all
from mall.auth import Principal
from mall.crypto import USERS_PHONE, DataCipher
from mall.errors import ApiError, not_found

# Phone numbers are kept sealed (phone_enc) with a blind index (phone_hash) for look-ups and
# uniqueness; see mall/crypto.py.
USER_COLUMNS = "user_id, phone_enc, email, role, nickname, avatar_url, created_at"
INSERT_USER = f"""
INSERT INTO users (user_id, phone_hash, phone_enc, email, password_hash, nickname)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
RETURNING {USER_COLUMNS}
"""
SELECT_BY_PHONE = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE phone_hash = $1"
SELECT_BY_EMAIL = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
SELECT_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1"
# $2/$4 say whether nickname/avatar_url were sent at all; sent as null clears the field.
UPDATE_PROFILE = f"""
UPDATE users
SET nickname = CASE WHEN $2 THEN $3 ELSE nickname END,
    avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END,
    updated_at = now()
WHERE user_id = $1
RETURNING {USER_COLUMNS}
"""
UPDATE_ROLE = f"""
UPDATE users SET role = $2, updated_at = now() WHERE user_id = $1
RETURNING {USER_COLUMNS}
"""
LOCK_USER_ROLE = "SELECT role FROM users WHERE user_id = $1 FOR UPDATE"
UPDATE_PASSWORD_HASH = "UPDATE users SET password_hash = $2 WHERE user_id = $1"


def new_user_id() -> str:
    return "u" + secrets.token_hex(12)


def phone_index(cipher: DataCipher, e164: str) -> bytes:
    """The blind index of a normalised (E.164) phone number."""
    return cipher.blind_index(e164, USERS_PHONE)


def user_view(row: asyncpg.Record, cipher: DataCipher) -> dict[str, Any]:
    sealed = row["phone_enc"]
    return {
        "user_id": row["user_id"],
        "phone": cipher.open_text(sealed, USERS_PHONE, row["user_id"]) if sealed else None,
        "email": row["email"],
        "role": row["role"],
        "nickname": row["nickname"],
        "avatar_url": row["avatar_url"],
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
    }


async def find_by_login(conn: asyncpg.Connection | asyncpg.Pool, login: Login,
                        cipher: DataCipher) -> asyncpg.Record | None:
    if login.kind == "phone":
        return await conn.fetchrow(SELECT_BY_PHONE, phone_index(cipher, login.value))
    return await conn.fetchrow(SELECT_BY_EMAIL, login.value)


async def insert_user(conn: asyncpg.Connection, login: Login, password_hash: str,
                      nickname: str | None, cipher: DataCipher) -> asyncpg.Record | None:
    """The new user's row, or None when the phone or e-mail already has an account (the
    unique blind index decides for phones, also between concurrent sign-ups)."""
    user_id = new_user_id()
    phone_hash = phone_enc = email = None
    if login.kind == "phone":
        phone_hash = phone_index(cipher, login.value)
        phone_enc = cipher.seal_text(login.value, USERS_PHONE, user_id)
    else:
        email = login.value
    return await conn.fetchrow(INSERT_USER, user_id, phone_hash, phone_enc, email, password_hash,
                               nickname)


async def update_profile(pool: asyncpg.Pool, user_id: str,
                         patch: ProfilePatch) -> asyncpg.Record | None:
    nickname_sent = patch.nickname is not msgspec.UNSET
    avatar_sent = patch.avatar_url is not msgspec.UNSET
    async with pool.acquire() as conn, conn.transaction():
        return await conn.fetchrow(
            UPDATE_PROFILE, user_id,
            nickname_sent, patch.nickname if nickname_sent else None,
            avatar_sent, patch.avatar_url if avatar_sent else None,
        )


async def change_role(pool: asyncpg.Pool, actor: Principal, user_id: str,
                       role: str) -> asyncpg.Record:
    """Set another user's role and revoke their refresh tokens, so they sign in again and
    their next tokens carry the new role."""
    if role == "admin":
        raise ApiError(403, "forbidden", "the admin role cannot be granted through the API")
    if user_id == actor.user_id:
        raise ApiError(403, "forbidden", "an admin cannot change their own role")
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval(LOCK_USER_ROLE, user_id)
        if current is None:
            raise not_found("user")
        if current == "admin":
            raise ApiError(403, "forbidden", "an admin's role cannot be changed through the API")
        row = await conn.fetchrow(UPDATE_ROLE, user_id, role)
        if current != role:
            await revoke_all(conn, user_id, "role_changed")
    return row
