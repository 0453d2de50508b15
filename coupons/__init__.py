"""Coupons: templates, the claim grab, pushes to segments, the wallet, redemption rules."""

from aiohttp import web

from coupons.http import setup_routes


def setup(app: web.Application) -> None:
    """Register the coupon routes on the app."""
    setup_routes(app)
