"""Admission of flash-sale purchases: one atomic Lua call decides, the handler maps the answer."""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass
from typing import Any

from mall.autopipe import ScriptPipe
from mall.errors import ApiError
from mall.keys import Keys, make_order_id
from seckill import metrics
from seckill.soldout import SoldOutFlags


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


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    sale_id: int
    user_id: str
    qty: int
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Outcome
    order_id: str
    remaining: int


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
}


_OUTCOME_COUNTERS = {o: metrics.ADMISSIONS.labels(o.name.lower()) for o in Outcome}


def rejection(outcome: Outcome) -> ApiError:
    status, code, message = _REJECTIONS[outcome]
    return ApiError(status, code, message)


class AdmissionService:
    def __init__(
        self, script: ScriptPipe, keys: Keys, flags: SoldOutFlags, record_ttl_s: int
    ) -> None:
        self._script = script
        self._keys = keys
        self._flags = flags
        self._ttl = record_ttl_s

    async def admit(self, req: PurchaseRequest) -> Admission:
        if self._flags.answers_sold_out(req.sale_id, req.user_id):
            metrics.SOLD_OUT_SHORTCUTS.inc()
            _OUTCOME_COUNTERS[Outcome.SOLD_OUT].inc()
            return Admission(Outcome.SOLD_OUT, "", 0)
        started = time.perf_counter()
        order_id = make_order_id(req.sale_id, os.urandom(16).hex())
        keys = self._keys.sale(req.sale_id).admission(req.user_id, req.idempotency_key, order_id)
        fingerprint = f"qty={req.qty}" if req.idempotency_key else ""
        args: list[Any] = [req.user_id, req.qty, order_id, fingerprint, self._ttl]
        code, returned_id, remaining = await self._script.call(keys, args)
        outcome = Outcome(int(code))
        remaining = int(remaining)
        if remaining <= 0 and outcome in (Outcome.ACCEPTED, Outcome.SOLD_OUT):
            self._flags.mark_sold_out(req.sale_id)
        metrics.ADMISSION_SECONDS.observe(time.perf_counter() - started)
        _OUTCOME_COUNTERS[outcome].inc()
        order = returned_id.decode() if isinstance(returned_id, bytes) else str(returned_id)
        return Admission(outcome, order, remaining)
