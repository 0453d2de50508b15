"""GET /api/v1/admin/audit: the log for staff, filtered, newest first, as JSON pages or CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from audit.log import KINDS
from mall.auth import require_staff
from mall.csv_export import stream_query
from mall.errors import invalid, json_response
from mall.openapi import api_doc
from mall.params import query_int, query_timestamp
from mall.resources import PG, VERIFIER

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
EXPORT_MAX_ROWS = 100_000
MAX_ID = 2**63 - 1
COLUMNS = ("id", "at", "kind", "actor", "actor_role", "ip", "method", "path", "route", "target",
           "status", "outcome", "details", "request_id")
QUERY_DOCS = {
    "kind": ", ".join(KINDS),
    "actor": "a user id",
    "target": "an id the entry is about (order, product, payment, user...)",
    "from": "ISO 8601 with offset, inclusive",
    "to": "ISO 8601 with offset, exclusive",
    "status": "the HTTP status answered, 100-599",
    "limit": f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT} (JSON only)",
    "cursor": "next_cursor of the previous page",
    "format": "json (default) or csv (at most 100,000 rows)",
}
# Newest first by id: ids only grow, and a page boundary on the id is exact.
SEARCH = f"""
SELECT {", ".join(COLUMNS)} FROM audit_log
WHERE ($1::text IS NULL OR kind = $1)
  AND ($2::text IS NULL OR actor = $2)
  AND ($3::text IS NULL OR audit_target_ids(target) @> ARRAY[$3::text])
  AND ($4::timestamptz IS NULL OR at >= $4)
  AND ($5::timestamptz IS NULL OR at < $5)
  AND ($6::int IS NULL OR status = $6)
  AND id < $7
ORDER BY id DESC
LIMIT $8
"""


@dataclass(frozen=True, slots=True)
class AuditFilters:
    kind: str | None
    actor: str | None
    target: str | None
    at_from: datetime | None
    at_to: datetime | None
    status: int | None
    before_id: int

    def args(self) -> list[Any]:
        return [self.kind, self.actor, self.target, self.at_from, self.at_to, self.status,
                self.before_id]


def _text(raw: str | None, name: str) -> str | None:
    if raw is not None and not (1 <= len(raw) <= 128 and raw.isprintable()):
        raise invalid(f"{name} must be 1-128 printable characters")
    return raw


def parse_filters(query: Any) -> AuditFilters:
    unknown = set(query) - set(QUERY_DOCS)
    if unknown:
        raise invalid(f"unknown query parameter: {sorted(unknown)[0]}")
    if any(len(query.getall(name)) > 1 for name in query):
        raise invalid("each query parameter may be given once")
    kind = query.get("kind")
    if kind is not None and kind not in KINDS:
        raise invalid(f"kind must be one of {', '.join(KINDS)}")
    at_from = query_timestamp(query.get("from"), "from")
    at_to = query_timestamp(query.get("to"), "to")
    if at_from is not None and at_to is not None and at_from > at_to:
        raise invalid("from must not be after to")
    cursor = query_int(query.get("cursor"), "cursor", 1, MAX_ID)
    return AuditFilters(kind, _text(query.get("actor"), "actor"),
                        _text(query.get("target"), "target"), at_from, at_to,
                        query_int(query.get("status"), "status", 100, 599),
                        cursor if cursor is not None else MAX_ID)


def _view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    view["at"] = row["at"].astimezone(UTC).isoformat()
    view["ip"] = str(row["ip"]) if row["ip"] is not None else None
    view["target"] = orjson.loads(row["target"])
    view["details"] = orjson.loads(row["details"])
    return view


@api_doc(
    summary="The audit log: staff actions, log-ins, permission denials, payment callbacks",
    tag="admin", roles=("staff", "admin"), query=QUERY_DOCS,
    responses={200: "{items: [{id, at, kind, actor, actor_role, ip, method, path, route, "
                    "target, status, outcome, details, request_id}], next_cursor}, "
                    "or text/csv with format=csv"},
    errors={401: "unauthorized", 403: "forbidden", 422: "invalid_request"},
)
async def get_audit(request: web.Request) -> web.StreamResponse:
    require_staff(request.app[VERIFIER].from_request(request))
    filters = parse_filters(request.query)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise invalid("format must be json or csv")
    if fmt == "csv":
        if "limit" in request.query:
            raise invalid("limit applies to JSON pages only")
        return await _export_csv(request, filters)
    limit = query_int(request.query.get("limit"), "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    rows = await request.app[PG].fetch(SEARCH, *filters.args(), limit + 1)
    page = rows[:limit]
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return json_response({"items": [_view(r) for r in page], "next_cursor": next_cursor})


async def _export_csv(request: web.Request, filters: AuditFilters) -> web.StreamResponse:
    return await stream_query(request, request.app[PG], "audit.csv", COLUMNS, SEARCH,
                              *filters.args(), EXPORT_MAX_ROWS)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/audit", get_audit)
