"""mall/hs256.py accepts and refuses exactly what PyJWT does (HS256, exp required)."""

from __future__ import annotations

import base64
import json
import random
import time

import jwt
import pytest

from mall.hs256 import ExpiredToken, InvalidToken, verify_hs256

SECRET = "s3cret-" * 6
NOW = int(time.time())


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def craft(header: dict, claims: dict, secret: str = SECRET, alg: str = "sha256") -> str:
    import hashlib
    import hmac

    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{h}.{p}".encode(), getattr(hashlib, alg)).digest()
    return f"{h}.{p}.{b64(sig)}"


def pyjwt_verdict(token: str) -> str:
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
        return "ok"
    except jwt.ExpiredSignatureError:
        return "expired"
    except jwt.PyJWTError:
        return "invalid"


def our_verdict(token: str) -> str:
    try:
        verify_hs256(token, SECRET.encode())
        return "ok"
    except ExpiredToken:
        return "expired"
    except InvalidToken:
        return "invalid"


NONE_HEADER = b64(b'{"alg":"none"}')
# Valid for a week: the corpus is built when the suite is collected, and the suite may run for
# longer than any short expiry before it reaches these tests.
VALID_S = 7 * 86_400
GOOD = {"sub": "u1", "role": "customer", "exp": NOW + VALID_S}
HEADER = {"alg": "HS256", "typ": "JWT"}


def corpus() -> list[str]:
    valid = jwt.encode(GOOD, SECRET, algorithm="HS256")
    h, p, s = valid.split(".")
    tokens = [
        valid,
        jwt.encode({**GOOD, "exp": NOW - 5}, SECRET, algorithm="HS256"),
        jwt.encode({**GOOD, "nbf": NOW + VALID_S // 2}, SECRET, algorithm="HS256"),
        jwt.encode({**GOOD, "nbf": NOW - 600, "iat": NOW}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "u1"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode(GOOD, "another-secret-of-enough-length!!", algorithm="HS256"),
        jwt.encode(GOOD, SECRET + SECRET, algorithm="HS512"),
        craft({"alg": "none"}, GOOD)[: -1],
        NONE_HEADER + f".{p}.",
        craft({"alg": "HS256", "crit": ["x"]}, GOOD),
        craft({"typ": "JWT"}, GOOD),
        craft(HEADER, {**GOOD, "exp": "tomorrow"}),
        craft(HEADER, {**GOOD, "exp": True}),
        craft(HEADER, {**GOOD, "iat": "now"}),
        craft(HEADER, [1, 2, 3]),  # type: ignore[arg-type]
        craft(HEADER, {**GOOD, "exp": NOW + VALID_S + 0.5}),
        f"{h}.{p}",
        f"{h}.{p}.{s}.{s}",
        f"{h}.{p}.{s[:-2]}",
        f"{h}.{p[:-1]}A.{s}",
        f"{h}.{p}.{s}=",
        f"{h}!.{p}.{s}",
        "",
        "...",
        "not-a-token",
    ]
    rng = random.Random(7)
    for _ in range(300):  # single-character corruptions of a valid token
        i = rng.randrange(len(valid))
        c = rng.choice("AZaz09-_.=+/ ")
        tokens.append(valid[:i] + c + valid[i + 1:])
    return tokens


@pytest.mark.parametrize("token", corpus())
def test_same_verdict_as_pyjwt(token: str) -> None:
    assert our_verdict(token) == pyjwt_verdict(token)


def test_claims_come_back() -> None:
    token = jwt.encode(GOOD, SECRET, algorithm="HS256")
    assert verify_hs256(token, SECRET.encode()) == GOOD


def test_only_the_canonical_encoding_is_accepted() -> None:
    """The last character of a segment carries unused low bits: every other spelling of the
    same bytes is refused, as PyJWT refuses it (found when a random corruption hit it)."""
    valid = jwt.encode(GOOD, SECRET, algorithm="HS256")
    h, p, s = valid.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for segment in ("h", "p", "s"):
        parts = {"h": h, "p": p, "s": s}
        original = parts[segment]
        for c in alphabet:
            parts[segment] = original[:-1] + c
            token = f"{parts['h']}.{parts['p']}.{parts['s']}"
            assert our_verdict(token) == pyjwt_verdict(token), token
