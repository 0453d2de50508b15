"""Cart and checkout."""

from aiohttp import web

from checkout import http


def setup(app: web.Application) -> None:
    """Register the cart and checkout routes on the app."""
    http.setup(app)
