"""Cart and checkout."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the cart and checkout routes on the app."""
