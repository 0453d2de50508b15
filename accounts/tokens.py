"""Token pairs: a short-lived JWT access token and an opaque, rotating refresh token.

Only the SHA-256 of a refresh token is stored. Refreshing revokes the presented token and
issues a new pair; presenting a revoked token again means it leaked (the thief and the owner
both hold it), so every refresh token of that user is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

from mall.auth import issue_token
from mall.errors import ApiError
from mall.settings import Settings

INSERT_REFRESH = """
INSERT INTO refresh_tokens (token_hash, user_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
"""
# Expired tokens can no longer be used: they are cleared whenever the user gets a new one.
PURGE_EXPIRED = "DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < now()"
LOCK_REFRESH = """
SELECT r.user_id, r.revoked_at IS NOT NULL AS revoked, r.expires_at <= now() AS expired,
       u.role
FROM refresh_tokens r JOIN users u USING (user_id)
WHERE r.token_hash = $1
FOR UPDATE OF r
"""
REVOKE_ONE = """
UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = $2
WHERE token_hash = $1 AND revoked_at IS NULL
"""
REVOKE_ALL = """
UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = $2
WHERE user_id = $1 AND revoked_at IS NULL
"""
MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int

    def view(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in,
        }


def invalid_refresh_token() -> ApiError:
    return ApiError(401, "invalid_refresh_token", "refresh token is invalid, expired or revoked")


def token_hash(refresh_token: str) -> bytes:
    return hashlib.sha256(refresh_token.encode()).digest()


async def issue_pair(conn: asyncpg.Connection, settings: Settings, user_id: str,
                     role: str) -> TokenPair:
    """A new pair for the user, its refresh token recorded on `conn` (inside a transaction)."""
    refresh = secrets.token_urlsafe(32)
    await conn.execute(PURGE_EXPIRED, user_id)
    await conn.execute(INSERT_REFRESH, token_hash(refresh), user_id,
                       float(settings.refresh_token_ttl_s))
    access = issue_token(settings.jwt_secret, user_id, role, settings.access_token_ttl_s)
    return TokenPair(access, settings.access_token_ttl_s, refresh, settings.refresh_token_ttl_s)


async def rotate(pool: asyncpg.Pool, settings: Settings, refresh_token: str) -> TokenPair:
    """Revoke the presented refresh token and issue a new pair with the role read afresh."""
    if len(refresh_token) > MAX_TOKEN_LENGTH:
        raise invalid_refresh_token()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(LOCK_REFRESH, token_hash(refresh_token))
        if row is None or row["expired"]:
            raise invalid_refresh_token()
        if row["revoked"]:
            await conn.execute(REVOKE_ALL, row["user_id"], "reuse")
            pair = None
        else:
            await conn.execute(REVOKE_ONE, token_hash(refresh_token), "rotated")
            pair = await issue_pair(conn, settings, row["user_id"], row["role"])
    if pair is None:  # raised only now, so the family revocation above is committed
        raise invalid_refresh_token()
    return pair


async def revoke(pool: asyncpg.Pool, refresh_token: str) -> None:
    """Log out: revoke one refresh token. Unknown or already revoked tokens change nothing."""
    if len(refresh_token) > MAX_TOKEN_LENGTH:
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(REVOKE_ONE, token_hash(refresh_token), "logout")


async def revoke_all(conn: asyncpg.Connection, user_id: str, reason: str) -> int:
    status = await conn.execute(REVOKE_ALL, user_id, reason)
    return int(status.split()[-1])
