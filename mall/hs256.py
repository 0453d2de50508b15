"""Verifying HS256 JWTs on the purchase path, in a few microseconds.

PyJWT issues every token (mall.auth.issue_token) and is the reference; but its decode costs
about 70 microseconds per token on a 2-core machine, as much as a whole request of the aiohttp
floor, and a flash sale brings a new token with every new buyer. Verification here is the
RFC 7515 compact form with one accepted algorithm: the header must say HS256 (no "none", no
other algorithm, no "crit"), the HMAC-SHA256 over "header.payload" must match in constant
time, and exp (required) and nbf (if present) must hold. tests/unit/test_hs256.py checks that
it accepts and refuses exactly what PyJWT does on valid, forged, tampered and malformed tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

import orjson

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class InvalidToken(Exception):
    pass


class ExpiredToken(InvalidToken):
    pass


def _b64(segment: str) -> bytes:
    if not _SEGMENT.match(segment):
        raise InvalidToken("malformed segment")
    try:
        segment = segment.rstrip("=")
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        raise InvalidToken("malformed segment") from None
    # Only the canonical encoding: unused low bits in the last character must be zero, so one
    # token has one spelling (PyJWT refuses the others too).
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment.encode():
        raise InvalidToken("malformed segment")
    return decoded


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidToken("malformed JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("not a JSON object")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float)  # as PyJWT: a bool counts as 0 or 1


def verify_hs256(token: str, secret: bytes, now: float | None = None) -> dict[str, Any]:
    """The token's claims, or InvalidToken / ExpiredToken."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_b64(header_b64))
    if header.get("alg") != "HS256" or "crit" in header:
        raise InvalidToken("unsupported header")
    expected = hmac.new(secret, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64(signature_b64)):
        raise InvalidToken("bad signature")
    claims = _json_object(_b64(payload_b64))
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if not _number(exp):
        raise InvalidToken("exp is required")
    if exp <= now:
        raise ExpiredToken("expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or nbf > now):
        raise InvalidToken("not yet valid")
    iat = claims.get("iat")
    if iat is not None and not _number(iat):
        raise InvalidToken("iat must be a number")
    return claims
