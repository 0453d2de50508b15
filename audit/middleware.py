"""Records the requests the audit log must see.

Audited: every staff action (a request to /api/v1/admin/* other than GET, HEAD or OPTIONS),
every log-in attempt (password, one-time code, refresh-token exchange), every payment provider
callback, and every permission denial (a 403 from anywhere, except the flash-sale window's
`not_started` / `ended` and the anti-bot admission token's refusals, which answer a business
rule rather than a missing permission and can come at thousands per second around a sale's
start).

Anything else passes through with a few string comparisons: no token is verified and no I/O is
done, so the flash-sale hot path does not pay for the log.

The entry is written *before* the answer leaves, so a staff action a client saw answered has
its row. When PostgreSQL fails or is too slow (AUDIT_WRITE_TIMEOUT_S), the request is still
answered as the handler decided: its effect has already happened, and an error would mislead
the client into retrying it. The failure is counted in mall_audit_write_failures_total and the
entry (already redacted) is logged at ERROR level, so it survives in the process log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from audit import metrics
from audit.log import (
    LOGIN,
    PAYMENT_CALLBACK,
    PERMISSION_DENIED,
    STAFF_ACTION,
    AuditEntry,
    append,
    mask_login,
    redact,
)
from mall.auth import Principal
from mall.errors import UNAVAILABLE_ERRORS, ApiError
from mall.resources import PG, VERIFIER

log = logging.getLogger(__name__)

AUDIT_WRITE_TIMEOUT_S = 2.0
ADMIN_PREFIX: Final = "/api/v1/admin/"
WEBHOOK_PREFIX: Final = "/api/v1/payments/webhooks/"
LOGIN_ROUTES: Final = {
    "/api/v1/auth/login": "password",
    "/api/v1/auth/login/code": "code",
    "/api/v1/auth/refresh": "refresh",
}
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_DENIALS: Final = frozenset({"not_started", "ended", "admission_token_required",
                                 "admission_token_invalid"})
MAX_BODY_TO_KEEP = 16 * 1024
NOTES = web.RequestKey("audit_notes", dict[str, Any])


def note(request: web.Request, **details: Any) -> None:
    """Add what only the handler knows (a payment id, an outcome) to the request's entry."""
    request.setdefault(NOTES, {}).update(details)


def classify(method: str, path: str) -> str | None:
    """The kind of entry a request makes whatever it answers, or None."""
    if method in READ_METHODS:
        return None
    if path.startswith(ADMIN_PREFIX):
        return STAFF_ACTION
    if method == "POST":
        if path in LOGIN_ROUTES:
            return LOGIN
        if path.startswith(WEBHOOK_PREFIX):
            return PAYMENT_CALLBACK
    return None


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    kind = classify(request.method, request.path)
    try:
        response = await handler(request)
    except Exception as exc:
        if kind is not None or _raised_status(exc) == 403:
            await _record(request, kind, Outcome.of_exception(exc), None)
        raise
    if kind is not None or response.status == 403:
        await _record(request, kind, Outcome.of_response(response), response)
    return response


def _raised_status(exc: Exception) -> int | None:
    if isinstance(exc, ApiError | web.HTTPException):
        return exc.status
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The status a request answers and its error code (None on success)."""

    status: int
    code: str | None
    message: str | None = None

    @classmethod
    def of_exception(cls, exc: Exception) -> Outcome:
        if isinstance(exc, ApiError):
            return cls(exc.status, exc.code, exc.message)
        if isinstance(exc, web.HTTPException):
            code = "forbidden" if exc.status == 403 else exc.reason.lower().replace(" ", "_")
            return cls(exc.status, code if exc.status >= 400 else None)
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return cls(503, "unavailable")
        return cls(500, "internal_error")

    @classmethod
    def of_response(cls, response: web.StreamResponse) -> Outcome:
        if response.status < 400:
            return cls(response.status, None)
        error = _json_body(response).get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return cls(response.status, str(code) if code else f"http_{response.status}")


async def _record(request: web.Request, kind: str | None, outcome: Outcome,
                  response: web.StreamResponse | None) -> None:
    if outcome.status == 403 and outcome.code not in NOT_DENIALS:
        kind = PERMISSION_DENIED
    if kind is None:
        return
    try:
        entry = await _entry(request, kind, outcome, response)
    except Exception:  # a bug here must not turn an answer into a 500
        log.exception("could not build the audit entry of %s %s", request.method, request.path)
        metrics.WRITE_FAILURES.labels(kind).inc()
        return
    await write(request.app, entry)


async def write(app: web.Application, entry: AuditEntry) -> None:
    """Write the entry; on failure count it and log it (the caller answers regardless)."""
    try:
        await asyncio.wait_for(append(app[PG], entry), AUDIT_WRITE_TIMEOUT_S)
    except Exception as exc:
        metrics.WRITE_FAILURES.labels(entry.kind).inc()
        log.error("audit entry not written (%s): %s", type(exc).__name__,
                  orjson.dumps(_loggable(entry)).decode())
        return
    metrics.ENTRIES.labels(entry.kind).inc()


def _loggable(entry: AuditEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "actor": entry.actor, "actor_role": entry.actor_role,
            "ip": entry.ip, "method": entry.method, "path": entry.path, "route": entry.route,
            "target": entry.target, "status": entry.status, "outcome": entry.outcome,
            "details": redact(entry.details), "request_id": entry.request_id}


async def _entry(request: web.Request, kind: str, outcome: Outcome,
                 response: web.StreamResponse | None) -> AuditEntry:
    details: dict[str, Any] = {}
    if outcome.code is not None:
        details["error"] = outcome.code
        if outcome.message:
            details["message"] = outcome.message
    principal: Principal | None = None
    if kind == LOGIN:
        principal = await _login_details(request, response, details)
    else:
        principal = _principal(request)
    if kind in (STAFF_ACTION, PERMISSION_DENIED) and request.method not in READ_METHODS:
        body = await _request_json(request)
        if body is not None:
            details["body"] = body
    if kind == PAYMENT_CALLBACK:
        details["signature_valid"] = _signature_valid(request, outcome)
    details.update(request.get(NOTES, {}))
    resource = request.match_info.route.resource
    result = str(details.get("outcome") or outcome.code or "success")
    return AuditEntry(
        kind=kind, method=request.method, path=request.path, status=outcome.status,
        outcome=result, actor=principal.user_id if principal else None,
        actor_role=principal.role if principal else None, ip=request.remote,
        route=resource.canonical if resource is not None else None,
        target=dict(request.match_info), details=details,
        request_id=request.headers.get("X-Request-Id"),
    )


def _signature_valid(request: web.Request, outcome: Outcome) -> bool | None:
    """False when refused for its signature; None when it was never checked (unknown
    provider, body too large)."""
    if outcome.code == "invalid_signature":
        return False
    if NOTES in request or outcome.code in (None, "invalid_request"):
        return True  # 422: signed, but the event cannot be used
    return None


def _principal(request: web.Request) -> Principal | None:
    try:
        return request.app[VERIFIER].from_request(request)
    except ApiError:
        return None


async def _login_details(request: web.Request, response: web.StreamResponse | None,
                         details: dict[str, Any]) -> Principal | None:
    """Masked identifier, method and reason; the user once the attempt succeeded."""
    method = LOGIN_ROUTES[request.path]
    details["login_method"] = method
    details["reason"] = details.pop("error", None) or "success"
    details.pop("message", None)
    body = await _request_json(request, keep=False)
    login = body.get("login") if isinstance(body, dict) else None
    if isinstance(login, str):
        details["login"] = mask_login(login)
    if response is None or response.status >= 400:
        return None
    answer = _json_body(response)
    user, tokens = answer.get("user"), answer.get("tokens")
    if isinstance(user, dict) and isinstance(user.get("user_id"), str):
        return Principal(user["user_id"], str(user.get("role")), 0.0)
    if isinstance(tokens, dict) and isinstance(tokens.get("access_token"), str):
        try:
            return request.app[VERIFIER].verify(tokens["access_token"])
        except ApiError:
            return None
    return None


async def _request_json(request: web.Request, keep: bool = True) -> Any:
    """The request's JSON body (already read by the handler, so no I/O), redacted if kept."""
    if not request.body_exists or (request.content_length or 0) > MAX_BODY_TO_KEEP:
        return None
    try:
        raw = await request.read()
        parsed = orjson.loads(raw) if raw else None
    except (orjson.JSONDecodeError, web.HTTPException, ValueError, OSError):
        return {"unreadable_bytes": request.content_length}
    if parsed is None:
        return None
    return redact(parsed) if keep else parsed


def _json_body(response: web.StreamResponse) -> dict[str, Any]:
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes) or not body.startswith(b"{"):
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
