"""Pricing: timed price lists and member-only prices.

Staff keep price lists here; `catalog_api.availability.sellable_skus` turns them, and each
SKU's member price, into the price a buyer pays now.
"""

from aiohttp import web

from pricing import http


def setup(app: web.Application) -> None:
    """Register the price-list routes on the app."""
    http.setup_routes(app)
