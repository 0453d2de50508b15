"""Analytics: behaviour events recorded off the hot path, and the staff reports."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the report routes and the event sink on the app."""
