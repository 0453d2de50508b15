"""One-time log-in codes: sent through a `CodeSender`, kept in Redis only as an HMAC.

A code lives `otp_ttl_s`, is used at most once, allows `MAX_ATTEMPTS` verifications, and a
destination is sent at most one code per `COOLDOWN_S`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from accounts.keys import AccountKeys

log = logging.getLogger(__name__)

CODE_DIGITS = 6
MAX_ATTEMPTS = 5
COOLDOWN_S = 60


class CodeSender(Protocol):
    async def send(self, destination: str, code: str) -> None: ...


def mask(destination: str) -> str:
    """Everything but the last four characters hidden, safe to log."""
    return "*" * max(len(destination) - 4, 0) + destination[-4:]


class LoggingCodeSender:
    """The default sender: logs that a code went out and keeps the last code per destination.

    Deployments with an SMS or e-mail gateway put their own `CodeSender` on the app instead.
    """

    def __init__(self, keep: int = 1000) -> None:
        self._last: OrderedDict[str, str] = OrderedDict()
        self._keep = keep

    async def send(self, destination: str, code: str) -> None:
        log.info("one-time code sent to %s", mask(destination))
        self._last[destination] = code
        self._last.move_to_end(destination)
        if len(self._last) > self._keep:
            self._last.popitem(last=False)

    def last_code(self, destination: str) -> str | None:
        return self._last.get(destination)


@dataclass(frozen=True, slots=True)
class Cooldown:
    retry_after_s: int


class CodeStore:
    def __init__(self, redis: Redis, keys: AccountKeys, secret: str, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._secret = secret.encode()
        self._ttl_s = ttl_s

    def _mac(self, destination: str, code: str) -> str:
        return hmac.new(self._secret, f"{destination}:{code}".encode(), hashlib.sha256).hexdigest()

    async def start_cooldown(self, destination: str) -> Cooldown | None:
        """Claim the destination's send slot; a Cooldown when a code went out too recently."""
        key = self._keys.code_cooldown(destination)
        if await self._redis.set(key, b"1", nx=True, ex=COOLDOWN_S):
            return None
        ttl = await self._redis.ttl(key)
        return Cooldown(retry_after_s=max(int(ttl), 1))

    async def issue(self, destination: str) -> str:
        """A fresh code for the destination, replacing any earlier one and its attempts."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.code(destination), self._mac(destination, code), ex=self._ttl_s)
            pipe.delete(self._keys.code_attempts(destination))
            await pipe.execute()
        return code

    async def discard(self, destination: str) -> None:
        await self._redis.delete(self._keys.code(destination),
                                 self._keys.code_cooldown(destination))

    async def verify(self, destination: str, code: str) -> bool:
        """True once for the right code; the attempt is counted before the code is compared."""
        code_key = self._keys.code(destination)
        attempts_key = self._keys.code_attempts(destination)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(attempts_key)
            pipe.expire(attempts_key, self._ttl_s, nx=True)
            pipe.get(code_key)
            attempts, _, stored = await pipe.execute()
        if stored is None:
            return False
        if attempts > MAX_ATTEMPTS:
            await self._redis.delete(code_key)  # burnt: the buyer asks for a new code
            return False
        if not hmac.compare_digest(stored.decode(), self._mac(destination, code)):
            return False
        # Two requests with the right code at once: only the one whose DEL removed it wins.
        return bool(await self._redis.delete(code_key))
