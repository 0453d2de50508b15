"""Cart and checkout."""

from aiohttp import web

from checkout import http
from checkout.payments import http as payments_http


def setup(app: web.Application) -> None:
    """Register the cart, checkout and payment routes on the app."""
    http.setup(app)
    payments_http.setup(app)
