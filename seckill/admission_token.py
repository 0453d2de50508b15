"""Single-use admission tokens that a flash sale may require of its buyers (anti-bot).

A token is `base64url(payload || tag)`: payload = version (1 byte), sale id (8), expiry in unix
milliseconds (8), nonce (12 random bytes); tag = the first 16 bytes of HMAC-SHA256 over the
payload and the buyer's user id, keyed with a key derived from the JWT secret (so a JWT
signature can never pass for a token, nor a token for a JWT). The user id is bound by the tag
rather than carried, which keeps the token at 60 characters.

Checking a token costs one HMAC in the process; only the single use needs Redis, and that is
settled inside lua/admit.lua in the same atomic step as the purchase (the nonce's marker is
written only when the purchase is accepted, so a refused attempt does not burn the token).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_PAYLOAD = struct.Struct(">BQQ12s")
TOKEN_BYTES = _PAYLOAD.size + TAG_BYTES
TOKEN_CHARS = (TOKEN_BYTES * 4 + 2) // 3
_DERIVATION_LABEL = b"flashmall admission-token v1"


class TokenProblem(enum.Enum):
    """Why a token is not valid; named in the 403's details."""

    MALFORMED = "malformed"
    OTHER_SALE = "other_sale"
    BAD_SIGNATURE = "bad_signature"  # forged, tampered, or issued to another user
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    nonce: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class CheckedToken:
    nonce: str  # hex, names the used-nonce marker
    expires_at_ms: int


def derive_key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()


class AdmissionTokens:
    def __init__(self, jwt_secret: str) -> None:
        self._key = derive_key(jwt_secret)

    def _tag(self, payload: bytes, user_id: str) -> bytes:
        mac = hmac.new(self._key, payload + b"|" + user_id.encode(), hashlib.sha256)
        return mac.digest()[:TAG_BYTES]

    def issue(self, sale_id: int, user_id: str, expires_at_ms: int) -> IssuedToken:
        nonce = os.urandom(NONCE_BYTES)
        payload = _PAYLOAD.pack(VERSION, sale_id, expires_at_ms, nonce)
        raw = payload + self._tag(payload, user_id)
        token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return IssuedToken(token, nonce.hex(), expires_at_ms)

    def check(self, token: str, sale_id: int, user_id: str,
              now_ms: int | None = None) -> CheckedToken | TokenProblem:
        if len(token) != TOKEN_CHARS:
            return TokenProblem.MALFORMED
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return TokenProblem.MALFORMED
        if len(raw) != TOKEN_BYTES:
            return TokenProblem.MALFORMED
        payload, tag = raw[:_PAYLOAD.size], raw[_PAYLOAD.size:]
        version, token_sale, expires_at_ms, nonce = _PAYLOAD.unpack(payload)
        if not hmac.compare_digest(tag, self._tag(payload, user_id)) or version != VERSION:
            return TokenProblem.BAD_SIGNATURE
        if token_sale != sale_id:
            return TokenProblem.OTHER_SALE
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if expires_at_ms <= now_ms:
            return TokenProblem.EXPIRED
        return CheckedToken(nonce.hex(), expires_at_ms)
