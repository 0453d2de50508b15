"""The catalog as the cart sees it: an adapter over catalog_api's public availability read."""

from __future__ import annotations

import asyncpg

from catalog_api.availability import sellable_skus
from checkout.cart import SkuLookup, SkuView


def catalog_lookup(pool: asyncpg.Pool) -> SkuLookup:
    async def lookup(sku_ids: list[int], member: bool) -> dict[int, SkuView]:
        found = await sellable_skus(pool, sku_ids, member=member)
        return {
            sku_id: SkuView(sku_id=info.sku_id, product_id=info.product_id, name=info.name,
                            attributes=info.attributes, price=info.price,
                            list_price=info.list_price,
                            available=max(info.available, 0), published=info.published)
            for sku_id, info in found.items()
        }

    return lookup
