"""Parsing and checking search parameters, and the opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from multidict import MultiMapping

from catalog_api.models import MAX_ID, MAX_PRICE
from mall.errors import invalid

SORTS = ("relevance", "price_asc", "price_desc", "newest", "sales")
ALLOWED = frozenset({"q", "category_id", "tag", "min_price", "max_price", "in_stock", "sort",
                     "limit", "cursor"})
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_Q = 100
CURSOR_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str | None
    category_id: int | None
    tag: str | None
    min_price: int | None
    max_price: int | None
    in_stock: bool
    sort: str
    limit: int
    after: tuple[Any, int] | None  # (sort key, id) of the last item of the previous page

    def fingerprint(self) -> str:
        """Ties a cursor to the query that produced it."""
        parts = [self.q, self.category_id, self.tag, self.min_price, self.max_price,
                 self.in_stock, self.sort]
        return hashlib.blake2b(orjson.dumps(parts), digest_size=6).hexdigest()


def _one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise invalid(f"{name} may be given once")
    return values[0] if values else None


def _int(query: MultiMapping[str], name: str, high: int, low: int = 0) -> int | None:
    raw = _one(query, name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _text(query: MultiMapping[str], name: str, longest: int) -> str | None:
    raw = _one(query, name)
    if raw is None:
        return None
    cleaned = " ".join(raw.split())
    if not cleaned or len(cleaned) > longest or "\x00" in cleaned:
        raise invalid(f"{name} must be 1 to {longest} characters")
    return cleaned


def _bool(query: MultiMapping[str], name: str) -> bool:
    raw = _one(query, name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise invalid(f"{name} must be true or false")


def parse(query: MultiMapping[str]) -> SearchQuery:
    unknown = sorted(set(query) - ALLOWED)
    if unknown:
        raise invalid(f"unknown parameter: {unknown[0]}")
    q = _text(query, "q", MAX_Q)
    tag = _text(query, "tag", 32)
    sort = _one(query, "sort") or ("relevance" if q else "newest")
    if sort not in SORTS:
        raise invalid(f"sort must be one of {', '.join(SORTS)}")
    if sort == "relevance" and q is None:
        raise invalid("sort=relevance needs q")
    min_price = _int(query, "min_price", MAX_PRICE)
    max_price = _int(query, "max_price", MAX_PRICE)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise invalid("min_price must not exceed max_price")
    search = SearchQuery(
        q=q, category_id=_int(query, "category_id", MAX_ID, 1),
        tag=tag.lower() if tag else None, min_price=min_price, max_price=max_price,
        in_stock=_bool(query, "in_stock"), sort=sort,
        limit=_int(query, "limit", MAX_LIMIT, 1) or DEFAULT_LIMIT, after=None,
    )
    cursor = _one(query, "cursor")
    if cursor is None:
        return search
    return SearchQuery(**{**_fields(search), "after": decode_cursor(cursor, search)})


def _fields(search: SearchQuery) -> dict[str, Any]:
    return {name: getattr(search, name) for name in SearchQuery.__slots__}


def _key_to_json(sort: str, key: Any) -> Any:
    if sort == "newest":
        return _micros(key)
    if sort == "relevance":
        return str(key)
    return int(key)


def _micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _key_from_json(sort: str, raw: Any) -> Any:
    if sort == "newest" and type(raw) is int and 0 <= raw < 2**52:
        return EPOCH + timedelta(microseconds=raw)
    if sort == "relevance" and isinstance(raw, str) and len(raw) <= 40:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise invalid("cursor is not valid") from None
        if value.is_finite():
            return value
    if sort in ("price_asc", "price_desc", "sales") and type(raw) is int and 0 <= raw < 2**63:
        return raw
    raise invalid("cursor is not valid")


def encode_cursor(search: SearchQuery, key: Any, last_id: int) -> str:
    payload = [CURSOR_VERSION, search.fingerprint(), _key_to_json(search.sort, key), last_id]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str, search: SearchQuery) -> tuple[Any, int]:
    if len(cursor) > 200:
        raise invalid("cursor is not valid")
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid("cursor is not valid") from None
    if not isinstance(payload, list) or len(payload) != 4 or payload[0] != CURSOR_VERSION:
        raise invalid("cursor is not valid")
    _, fingerprint, raw_key, last_id = payload
    if fingerprint != search.fingerprint():
        raise invalid("cursor belongs to another query")
    if type(last_id) is not int or not 1 <= last_id <= MAX_ID:
        raise invalid("cursor is not valid")
    return _key_from_json(search.sort, raw_key), last_id
