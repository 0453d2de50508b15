"""CSV answers of the staff exports, built the same way everywhere."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

# A cell starting with one of these is run as a formula by spreadsheets: it is quoted out.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FLUSH_BYTES = 64 * 1024


def csv_cell(value: Any) -> Any:
    """None is an empty cell, booleans true/false, times ISO 8601 in UTC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if not isinstance(value, str | int):
        value = str(value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_body(columns: Sequence[str], rows: Iterable[Any]) -> bytes:
    """A header row, then each row's `columns` (rows are mappings)."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(columns)
    for row in rows:
        out.writerow([csv_cell(row[c]) for c in columns])
    return buffer.getvalue().encode()


async def stream_query(request: web.Request, pool: asyncpg.Pool, filename: str,
                       columns: Sequence[str], sql: str, *args: Any) -> web.StreamResponse:
    """Stream the rows of `sql` as CSV from a read-only transaction, in pieces of about
    FLUSH_BYTES, so a large export never sits in memory."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
    })
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(columns)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await response.prepare(request)
        async for row in conn.cursor(sql, *args, prefetch=1000):
            out.writerow([csv_cell(row[name]) for name in columns])
            if buffer.tell() >= FLUSH_BYTES:
                await response.write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response
