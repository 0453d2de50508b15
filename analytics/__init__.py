"""Analytics: behaviour events recorded off the hot path, and the staff reports.

Other packages call `analytics.events.record(app, kind, ...)` (no I/O, never raises).
"""

from aiohttp import web

from analytics import http
from analytics.events import sink_ctx


def setup(app: web.Application) -> None:
    """Register the report routes and the event sink on the app."""
    app.cleanup_ctx.append(sink_ctx)
    http.setup_routes(app)
