"""The catalog: categories, products and SKUs, search, product caching."""

from aiohttp import web

from catalog_api import products


def setup(app: web.Application) -> None:
    """Register the catalog routes and resources on the app."""
    products.setup_routes(app)
