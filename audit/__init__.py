"""Audit: the append-only log of staff actions, logins, permission denials and payment
callbacks."""

from aiohttp import web

from audit import http
from audit.middleware import note

__all__ = ["note", "setup"]


def setup(app: web.Application) -> None:
    """Register the audit routes on the app (the middleware is wired by the app factory)."""
    http.setup_routes(app)
