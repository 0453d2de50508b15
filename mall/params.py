"""Reading ids from request paths, the same way on every route."""

from __future__ import annotations

from aiohttp import web

from mall.errors import not_found

MAX_ID = 2**62


def path_id(request: web.Request, name: str, what: str) -> int:
    """A positive integer id from the path; anything else is 404 `what` not found.

    ASCII digits only: str.isdigit() also accepts digits such as '²' that int() refuses.
    """
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise not_found(what)
    return int(raw)
