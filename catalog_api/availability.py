"""What checkout may sell: price, units available and published state of given SKUs.

`sellable_skus` reads PostgreSQL (the truth), never the detail cache. Checkout refuses a SKU
that is missing from the answer, whose product is unpublished, or with too few units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import orjson

SELECT_SKUS = """
SELECT s.id, s.product_id, s.price, s.stock - s.sold AS available, p.published, p.name,
       s.attributes::text AS attributes
FROM skus s JOIN products p ON p.id = s.product_id
WHERE s.id = ANY($1::bigint[])
ORDER BY s.id
"""
# Locks the SKU rows only (in id order, the catalog's lock order); the product row is read.
SELECT_SKUS_FOR_UPDATE = SELECT_SKUS + "FOR UPDATE OF s"


@dataclass(frozen=True, slots=True)
class SkuInfo:
    sku_id: int
    product_id: int
    price: int  # fen
    available: int  # units allotted to regular sale not yet sold: stock - sold
    published: bool
    name: str  # the product's name
    attributes: dict[str, str]  # e.g. {"colour": "red", "size": "L"}

    @property
    def sellable(self) -> bool:
        return self.published and self.available > 0


async def sellable_skus(
    db: asyncpg.Pool | asyncpg.Connection, sku_ids: Iterable[int], *, for_update: bool = False
) -> dict[int, SkuInfo]:
    """SkuInfo for each of `sku_ids` that exists; unknown ids are absent from the answer.

    `for_update=True` locks the SKU rows until the caller's transaction ends (pass a
    connection inside a transaction), so price and stock cannot change under a checkout.
    """
    ids = sorted({int(i) for i in sku_ids})
    if not ids:
        return {}
    rows = await db.fetch(SELECT_SKUS_FOR_UPDATE if for_update else SELECT_SKUS, ids)
    return {
        r["id"]: SkuInfo(r["id"], r["product_id"], r["price"], r["available"], r["published"],
                         r["name"], orjson.loads(r["attributes"]))
        for r in rows
    }
