"""The one place that builds error JSON: `ApiError` and the middleware that renders it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import msgspec
import orjson
import redis.exceptions
from aiohttp import web

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success: HTTP status, a snake_case code and a readable message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def error_response(err: ApiError) -> web.Response:
    return web.Response(
        status=err.status,
        body=error_body(err.code, err.message, err.details),
        content_type="application/json",
        headers=err.headers,
    )


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def decode_body(body: bytes, model: type[T]) -> T:
    """Validate a JSON request body against a msgspec model; a bad body raises 422.

    A NUL character in any string is refused too: PostgreSQL cannot store it in text."""
    try:
        decoded = msgspec.json.decode(body, type=model, strict=True)
    except msgspec.ValidationError as exc:
        raise invalid(str(exc)) from None
    except msgspec.DecodeError:
        raise invalid("request body is not valid JSON") from None
    # JSON can only carry NUL escaped; the walk runs only when the escape is there.
    if b"\\u0000" in body and _has_nul(msgspec.json.decode(body)):
        raise invalid("text must not contain NUL characters")
    return decoded


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# Failures of Redis, PostgreSQL or the network: the client may retry (with its Idempotency-Key).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    OSError,
    TimeoutError,
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else "request body is too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(ApiError(exc.status, code, message, headers))
    except UNAVAILABLE_ERRORS as exc:
        log.warning("%s %s: a backing service is unavailable (%s)", request.method,
                    request.path, type(exc).__name__)
        return error_response(ApiError(503, "unavailable", "service temporarily unavailable",
                                       headers={"Retry-After": "1"}))
    except asyncpg.PostgresError as exc:
        # str(exc) may quote the failing row (personal data): log what identifies the error only
        log.error("database error on %s %s: %s (sqlstate %s, constraint %s)", request.method,
                  request.path, type(exc).__name__, exc.sqlstate,
                  getattr(exc, "constraint_name", None))
        return error_response(ApiError(500, "internal_error", "internal server error"))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal_error", "internal server error"))
