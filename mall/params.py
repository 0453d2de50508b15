"""Reading ids from request paths and integers from query strings, the same way on every
route."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from mall.errors import invalid, not_found

MAX_ID = 2**62


def path_id(request: web.Request, name: str, what: str) -> int:
    """A positive integer id from the path; anything else is 404 `what` not found.

    ASCII digits only: str.isdigit() also accepts digits such as '²' that int() refuses.
    """
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise not_found(what)
    return int(raw)


def query_int(raw: str | None, name: str, low: int, high: int) -> int | None:
    """An integer query parameter from `low` to `high`; None when absent, otherwise 422
    `invalid_request`. ASCII digits only, like path_id."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def query_limit(raw: str | None, default: int, maximum: int) -> int:
    """A page size from 1 to `maximum`, `default` when absent."""
    value = query_int(raw, "limit", 1, maximum)
    return default if value is None else value


def query_id_cursor(raw: str | None) -> int | None:
    """A keyset cursor that is the last row's id."""
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= len(raw) <= 19
                                and 1 <= int(raw) <= MAX_ID):
        raise invalid("cursor is not valid")
    return int(raw) if raw is not None else None


def path_key(request: web.Request, name: str, what: str, max_length: int = 128) -> str:
    """A text id from the path (an order id); 404 `what` not found unless it is 1 to
    `max_length` printable ASCII characters, as every id the mall issues is (PostgreSQL text
    refuses NUL, and digits such as '²' must not reach int())."""
    raw = request.match_info[name]
    if not 1 <= len(raw) <= max_length or not (raw.isascii() and raw.isprintable()):
        raise not_found(what)
    return raw


def query_timestamp(raw: str | None, name: str) -> datetime | None:
    """An ISO 8601 time with an offset; None when absent, otherwise 422 `invalid_request`."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name} must be an ISO 8601 timestamp with an offset") from None
    if value.tzinfo is None:
        raise invalid(f"{name} must be an ISO 8601 timestamp with an offset")
    return value
