"""Admission of flash-sale purchases: one atomic Lua call decides, the handler maps the answer.

The same call enforces the sale's rate limits (per user, per client IP, per sale) and, for a
sale that requires one, consumes the buyer's admission token; see lua/admit.lua for the order
of the checks.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.errors import ApiError
from mall.keys import Keys, SaleKeys, make_order_id
from mall.ratelimit import Counter, hit, rate_limited, window_ms
from mall.settings import Settings
from seckill import metrics
from seckill.admission_token import AdmissionTokens, CheckedToken, IssuedToken, TokenProblem
from seckill.shards import ShardedStock, home_shard
from seckill.soldout import SoldOutFlags

# The used-nonce marker outlives the token by this much, so a process whose clock runs
# behind Redis's still finds the marker of a token it considers unexpired.
NONCE_MARGIN_MS = 60_000
TOKEN_HEADER = "X-Admission-Token"


class Outcome(enum.IntEnum):
    """Return codes of lua/admit.lua."""

    ACCEPTED = 0
    REPLAY = 1
    SOLD_OUT = 2
    LIMIT_REACHED = 3
    NOT_STARTED = 4
    ENDED = 5
    NO_SUCH_SALE = 6
    IDEMPOTENCY_KEY_REUSED = 7
    RATE_LIMITED = 8
    TOKEN_REQUIRED = 9
    TOKEN_INVALID = 10
    TOKEN_USED = 11


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    sale_id: int
    user_id: str
    qty: int
    idempotency_key: str | None
    client_ip: str = "unknown"
    # None: no token sent; a CheckedToken: valid for this sale and user; a TokenProblem: sent
    # but not valid (the script still answers a replay of an accepted Idempotency-Key).
    token: CheckedToken | TokenProblem | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Outcome
    order_id: str
    remaining: int
    error: ApiError | None = None  # the answer of a refusal that depends on the request


_TOKEN_INVALID = "the admission token is not valid for this purchase"
_REJECTIONS: dict[Outcome, tuple[int, str, str]] = {
    Outcome.SOLD_OUT: (409, "sold_out", "this flash sale is sold out"),
    Outcome.LIMIT_REACHED: (
        409, "limit_reached", "you have reached the per-user limit of this sale"
    ),
    Outcome.NOT_STARTED: (403, "not_started", "this flash sale has not started yet"),
    Outcome.ENDED: (403, "ended", "this flash sale has ended"),
    Outcome.NO_SUCH_SALE: (404, "not_found", "flash sale not found"),
    Outcome.IDEMPOTENCY_KEY_REUSED: (
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
    ),
    Outcome.TOKEN_REQUIRED: (
        403, "admission_token_required",
        f"this flash sale needs an admission token in the {TOKEN_HEADER} header",
    ),
    Outcome.TOKEN_INVALID: (403, "admission_token_invalid", _TOKEN_INVALID),
    Outcome.TOKEN_USED: (403, "admission_token_invalid", _TOKEN_INVALID),
}


_OUTCOME_COUNTERS = {o: metrics.ADMISSIONS.labels(o.name.lower()) for o in Outcome}


def rejection(outcome: Outcome) -> ApiError:
    status, code, message = _REJECTIONS[outcome]
    return ApiError(status, code, message)


def token_invalid(reason: str) -> ApiError:
    status, code, message = _REJECTIONS[Outcome.TOKEN_INVALID]
    return ApiError(status, code, message, details={"reason": reason})


class LimitKeys:
    """Rate-counter and used-nonce keys of one sale, under its hash tag (`{fs<id>}`)."""

    __slots__ = ("_base", "sale")

    def __init__(self, sale: SaleKeys) -> None:
        self._base = sale.meta.removesuffix(":meta")
        self.sale = f"{self._base}:rl:sale"

    def user(self, user_id: str) -> str:
        return f"{self._base}:rl:u:{user_id}"

    def ip(self, ip: str) -> str:
        return f"{self._base}:rl:ip:{ip}"

    def nonce(self, nonce_hex: str | None) -> str:
        return f"{self._base}:nonce:{nonce_hex or '-'}"

    def token_counters(self, user_id: str, ip: str) -> tuple[str, str, str]:
        """Counters of admission-token requests: the purchase limits, counted apart."""
        return (f"{self._base}:rl:tok:u:{user_id}", f"{self._base}:rl:tok:ip:{ip}",
                f"{self._base}:rl:tok:sale")


class AdmissionService:
    def __init__(
        self, script: ScriptPipe, keys: Keys, flags: SoldOutFlags, settings: Settings,
        shards: ShardedStock,
    ) -> None:
        self._script = script
        self._keys = keys
        self._flags = flags
        self._shards = shards
        self._ttl = settings.order_view_ttl_s
        self._window_s = settings.rate_window_s
        self._window_ms = window_ms(settings.rate_window_s)
        self._limits = (settings.rate_limit_user, settings.rate_limit_ip,
                        settings.rate_limit_sale)
        self._scope_limits = dict(zip(("user", "ip", "sale"), self._limits, strict=True))
        self.tokens = AdmissionTokens(settings.jwt_secret)
        self._limit_keys: dict[tuple[int, int], LimitKeys] = {}

    def limit_keys(self, sale_id: int, shard: int = 0) -> LimitKeys:
        keys = self._limit_keys.get((sale_id, shard))
        if keys is None:
            keys = LimitKeys(self._keys.sale(sale_id, shard))
            self._limit_keys[(sale_id, shard)] = keys
        return keys

    async def admit(self, req: PurchaseRequest) -> Admission:
        if self._flags.answers_sold_out(req.sale_id, req.user_id):
            metrics.SOLD_OUT_SHORTCUTS.inc()
            _OUTCOME_COUNTERS[Outcome.SOLD_OUT].inc()
            return Admission(Outcome.SOLD_OUT, "", 0)
        started = time.perf_counter()
        shards = await self._shards.count(req.sale_id)
        shard = home_shard(req.user_id, shards)
        reply = await self._call(req, shards, shard)
        outcome = Outcome(int(reply[0]))
        if outcome is Outcome.SOLD_OUT and shards > 1:
            reply, outcome = await self._admit_with_borrowed_stock(req, shards, shard, reply)
        remaining = int(reply[2])
        if shards == 1:
            if remaining <= 0 and outcome in (Outcome.ACCEPTED, Outcome.SOLD_OUT):
                self._flags.mark_sold_out(req.sale_id)
        elif outcome is Outcome.SOLD_OUT:  # every sibling was found short
            self._flags.mark_sold_out(req.sale_id)
        metrics.ADMISSION_SECONDS.observe(time.perf_counter() - started)
        _OUTCOME_COUNTERS[outcome].inc()
        returned = reply[1]
        text = returned.decode() if isinstance(returned, bytes) else str(returned)
        error = None
        if outcome is Outcome.RATE_LIMITED:
            error = rate_limited(text, int(reply[3]), self._scope_limits[text], self._window_s)
            text = ""
        elif outcome is Outcome.TOKEN_INVALID and isinstance(req.token, TokenProblem):
            error = token_invalid(req.token.value)
        elif outcome is Outcome.TOKEN_USED:
            error = token_invalid("already_used")
        return Admission(outcome, text, remaining, error)

    async def _admit_with_borrowed_stock(
        self, req: PurchaseRequest, shards: int, shard: int, reply: Any
    ) -> tuple[Any, Outcome]:
        """The home shard is short: move units to it from its siblings and ask again, until
        the purchase is decided by something other than stock or no sibling has any left.

        Each new ask counts once more against the rate limits of the home shard."""
        outcome = Outcome.SOLD_OUT
        for _ in range(shards):
            if await self._shards.borrow(req.sale_id, shards, shard, req.qty) == 0:
                break
            reply = await self._call(req, shards, shard)
            outcome = Outcome(int(reply[0]))
            if outcome is not Outcome.SOLD_OUT:
                break
        return reply, outcome

    async def _call(self, req: PurchaseRequest, shards: int, shard: int) -> Any:
        """One admit.lua call on the buyer's home shard."""
        order_id = make_order_id(req.sale_id, os.urandom(16).hex(), shard)
        limit = self.limit_keys(req.sale_id, shard)
        token = req.token
        nonce, token_state, token_ms = None, "", 1
        if isinstance(token, CheckedToken):
            nonce, token_state = token.nonce, "1"
            token_ms = token.expires_at_ms - int(time.time() * 1000) + NONCE_MARGIN_MS
        elif token is not None:
            token_state = "0"
        keys = self._keys.sale(req.sale_id, shard).admission(req.user_id, req.idempotency_key,
                                                             order_id)
        keys += [limit.user(req.user_id), limit.ip(req.client_ip), limit.sale, limit.nonce(nonce)]
        fingerprint = f"qty={req.qty}" if req.idempotency_key else ""
        user_limit, ip_limit, sale_limit = self._limits
        args: list[Any] = [req.user_id, req.qty, order_id, fingerprint, self._ttl,
                           self._window_ms, user_limit, ip_limit, max(sale_limit // shards, 1),
                           token_state, max(token_ms, 1)]
        return await self._script.call(keys, args)


class AdmissionTokenDesk:
    """Issues admission tokens, rate-limited like purchases (on counters of its own)."""

    def __init__(self, redis: Redis, service: AdmissionService,
                 sale_window: Callable[[int], Awaitable[tuple[int, int] | None]],
                 settings: Settings) -> None:
        self._redis = redis
        self._service = service
        self._sale_window = sale_window
        self._settings = settings

    async def issue(self, sale_id: int, user_id: str, ip: str) -> IssuedToken:
        s = self._settings
        user_key, ip_key, sale_key = self._service.limit_keys(sale_id).token_counters(user_id, ip)
        await hit(self._redis, [Counter(user_key, s.rate_limit_user, "user"),
                                Counter(ip_key, s.rate_limit_ip, "ip"),
                                Counter(sale_key, s.rate_limit_sale, "sale")], s.rate_window_s)
        window = await self._sale_window(sale_id)
        if window is None:
            raise rejection(Outcome.NO_SUCH_SALE)
        starts_ms, ends_ms = window
        now_ms = int(time.time() * 1000)
        ttl_ms = s.admission_token_ttl_s * 1000
        if now_ms >= ends_ms:
            raise rejection(Outcome.ENDED)
        if now_ms < starts_ms - ttl_ms:
            status, code, _ = _REJECTIONS[Outcome.NOT_STARTED]
            raise ApiError(status, code, "admission tokens for this flash sale are not issued "
                           "yet", details={"issued_from_ms": starts_ms - ttl_ms})
        return self._service.tokens.issue(sale_id, user_id, min(now_ms + ttl_ms, ends_ms))
