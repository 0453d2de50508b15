"""What checkout may sell: price, units available and published state of given SKUs.

`sellable_skus` reads PostgreSQL (the truth), never the detail cache. Checkout refuses a SKU
that is missing from the answer, whose product is unpublished, or with too few units.

The price is the one the buyer pays now: the lowest of the SKU's list price, the price of each
price list in effect now (`status = 'active' AND starts_at <= now() < ends_at`; when several
overlap the lowest wins) and, for members only, the SKU's member price. On a tie the earlier
source in `list`, `price_list`, `member` is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
import orjson

PriceSource = Literal["list", "price_list", "member"]

# The cheapest price list in effect now for the SKU in `s`, with its end and id.
PROMOTION_LATERAL = """
LEFT JOIN LATERAL (
    SELECT i.price, l.ends_at, l.id
    FROM price_list_items i JOIN price_lists l ON l.id = i.price_list_id
    WHERE i.sku_id = s.id AND l.status = 'active' AND l.starts_at <= now() AND l.ends_at > now()
    ORDER BY i.price, l.ends_at DESC, l.id
    LIMIT 1
) promo ON true
"""
SELECT_SKUS = """
SELECT s.id, s.product_id, s.price, s.member_price, s.stock - s.sold AS available, p.published,
       p.name, s.attributes::text AS attributes,
       promo.price AS promotion_price, promo.ends_at AS promotion_ends_at,
       promo.id AS price_list_id
FROM skus s JOIN products p ON p.id = s.product_id
""" + PROMOTION_LATERAL + """
WHERE s.id = ANY($1::bigint[])
ORDER BY s.id
"""
# Locks the SKU rows only (in id order, the catalog's lock order); the product row is read.
SELECT_SKUS_FOR_UPDATE = SELECT_SKUS + "FOR UPDATE OF s"

# The price lists in effect now for every SKU of one product (for the product detail).
SELECT_PRODUCT_PROMOTIONS = """
SELECT s.id AS sku_id, promo.price AS promotion_price, promo.ends_at AS promotion_ends_at,
       promo.id AS price_list_id
FROM skus s
""" + PROMOTION_LATERAL + """
WHERE s.product_id = $1 AND promo.price IS NOT NULL
"""
# The next instant at which a price list touching the product starts or ends: until then the
# product's prices cannot change by the clock alone.
SELECT_NEXT_PRICE_CHANGE = """
SELECT min(CASE WHEN l.starts_at > now() THEN l.starts_at ELSE l.ends_at END)
FROM skus s
JOIN price_list_items i ON i.sku_id = s.id
JOIN price_lists l ON l.id = i.price_list_id
WHERE s.product_id = $1 AND l.status = 'active' AND l.ends_at > now()
"""

_SAME_AS_PRICE = -1


@dataclass(frozen=True, slots=True)
class SkuInfo:
    sku_id: int
    product_id: int
    price: int  # fen: what the buyer pays now (see the module's docstring)
    available: int  # units allotted to regular sale not yet sold: stock - sold
    published: bool
    name: str  # the product's name
    attributes: dict[str, str]  # e.g. {"colour": "red", "size": "L"}
    # The SKU's own price, before any price list or member price. Left out, it equals `price`
    # (a SKU sold at its list price).
    list_price: int = _SAME_AS_PRICE
    price_source: PriceSource = "list"
    price_list_id: int | None = None  # the price list that set `price`, when one did
    price_ends_at: datetime | None = None  # when that price list ends

    def __post_init__(self) -> None:
        if self.list_price == _SAME_AS_PRICE:
            object.__setattr__(self, "list_price", self.price)

    @property
    def sellable(self) -> bool:
        return self.published and self.available > 0


@dataclass(frozen=True, slots=True)
class EffectivePrice:
    price: int
    source: PriceSource


def effective_price(list_price: int, promotion_price: int | None, member_price: int | None,
                    member: bool) -> EffectivePrice:
    """The lowest of the list price, a price list's price and (for members) the member price."""
    best = EffectivePrice(list_price, "list")
    if promotion_price is not None and promotion_price < best.price:
        best = EffectivePrice(promotion_price, "price_list")
    if member and member_price is not None and member_price < best.price:
        best = EffectivePrice(member_price, "member")
    return best


def _info(row: asyncpg.Record, member: bool) -> SkuInfo:
    best = effective_price(row["price"], row["promotion_price"], row["member_price"], member)
    from_list = best.source == "price_list"
    return SkuInfo(
        row["id"], row["product_id"], best.price, row["available"], row["published"],
        row["name"], orjson.loads(row["attributes"]), list_price=row["price"],
        price_source=best.source,
        price_list_id=row["price_list_id"] if from_list else None,
        price_ends_at=row["promotion_ends_at"] if from_list else None,
    )


async def sellable_skus(
    db: asyncpg.Pool | asyncpg.Connection, sku_ids: Iterable[int], *, for_update: bool = False,
    member: bool = False,
) -> dict[int, SkuInfo]:
    """SkuInfo for each of `sku_ids` that exists; unknown ids are absent from the answer.

    `for_update=True` locks the SKU rows until the caller's transaction ends (pass a
    connection inside a transaction), so list price and stock cannot change under a checkout.
    `member=True` also offers each SKU's member price.
    """
    ids = sorted({int(i) for i in sku_ids})
    if not ids:
        return {}
    rows = await db.fetch(SELECT_SKUS_FOR_UPDATE if for_update else SELECT_SKUS, ids)
    return {r["id"]: _info(r, member) for r in rows}


@dataclass(frozen=True, slots=True)
class Promotion:
    """The cheapest price list in effect now for one SKU."""

    price: int
    ends_at: datetime
    price_list_id: int


async def product_promotions(
    conn: asyncpg.Connection, product_id: int
) -> tuple[dict[int, Promotion], datetime | None]:
    """The price list in effect now for each SKU of the product that has one, and the next
    instant a price list of the product starts or ends (None: no such list)."""
    rows = await conn.fetch(SELECT_PRODUCT_PROMOTIONS, product_id)
    next_change = await conn.fetchval(SELECT_NEXT_PRICE_CHANGE, product_id)
    found = {r["sku_id"]: Promotion(r["promotion_price"], r["promotion_ends_at"],
                                    r["price_list_id"]) for r in rows}
    return found, next_change
