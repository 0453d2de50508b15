"""Bearer JWT authentication (HS256) and role checks.

The hot path trusts a valid token and never touches PostgreSQL. Decoded tokens are cached by
their exact text for a short while, expiry still checked on every hit, because a flash-sale
buyer sends the same token many times per second.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import jwt
from aiohttp import web

from mall.errors import ApiError
from mall.hs256 import ExpiredToken, InvalidToken, verify_hs256

ROLES: Final = ("customer", "member", "staff", "admin")
STAFF_ROLES: Final = frozenset({"staff", "admin"})
_SUB_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: str
    expires_at: float

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def issue_token(secret: str, sub: str, role: str, ttl_s: int = 3600) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not _SUB_RE.match(sub):
        raise ValueError("sub must be 1-64 characters of letters, digits, '_' or '-'")
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + ttl_s}, secret, "HS256")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


class TokenVerifier:
    def __init__(self, secret: str, cache_size: int = 50_000) -> None:
        self._secret_bytes = secret.encode()
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is None:
            principal = self._decode(token)
            self._cache[token] = principal
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if principal.expires_at <= time.time():
            self._cache.pop(token, None)
            raise unauthorized("token has expired")
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = verify_hs256(token, self._secret_bytes)
        except ExpiredToken:
            raise unauthorized("token has expired") from None
        except InvalidToken:
            raise unauthorized("invalid token") from None
        sub, role = claims.get("sub"), claims.get("role")
        if not isinstance(sub, str) or not _SUB_RE.match(sub):
            raise unauthorized("invalid token subject")
        if role not in ROLES:
            raise unauthorized("invalid token role")
        return Principal(user_id=sub, role=role, expires_at=float(claims["exp"]))

    def from_request(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization")
        if not header:
            raise unauthorized("missing bearer token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise unauthorized("expected 'Authorization: Bearer <token>'")
        return self.verify(token.strip())


def require_staff(principal: Principal) -> Principal:
    if not principal.is_staff:
        raise ApiError(403, "forbidden", "this action needs the staff or admin role")
    return principal
