"""The catalog: categories, products and SKUs, search, product caching.

Checkout asks `catalog_api.availability.sellable_skus` what it may sell.
"""

from aiohttp import web

from catalog_api import categories, changes, detail, products, search, skus, staff
from catalog_api.http import CATALOG_KEYS
from catalog_api.keys import CatalogKeys
from mall.resources import SETTINGS


def setup(app: web.Application) -> None:
    """Register the catalog routes and resources on the app."""
    app[CATALOG_KEYS] = CatalogKeys(app[SETTINGS].namespace)
    categories.setup_routes(app)
    products.setup_routes(app)
    skus.setup_routes(app)
    staff.setup_routes(app)
    app.router.add_get("/api/v1/admin/products/{product_id}/changes", changes.get_changes)
    search.setup_routes(app)
    detail.setup_routes(app)
