"""The cart: per user, kept in Redis, priced from the catalog every time it is read.

The cart holds quantities only. Prices, availability and whether a SKU may still be sold come
from the catalog at each read, so a price change or an unpublished product shows at once.
Quantities are checked against what is available when they are set; the cart reserves
nothing (checkout does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from checkout.keys import CheckoutKeys
from mall.errors import ApiError, not_found
from mall.lua import Script

MAX_LINE_QTY = 99
MAX_LINES = 50
CART_TTL_S = 30 * 86_400


@dataclass(frozen=True, slots=True)
class SkuView:
    """What the cart needs to know of a SKU, as the catalog sees it now."""

    sku_id: int
    product_id: int
    name: str
    attributes: dict[str, str]
    price: int  # what this buyer pays now (price lists, member price)
    list_price: int
    available: int
    published: bool


# (SKU ids, whether the buyer gets member prices) -> the SKUs found
SkuLookup = Callable[[list[int], bool], Awaitable[dict[int, SkuView]]]


class CartService:
    def __init__(self, redis: Redis, keys: CheckoutKeys, lookup: SkuLookup) -> None:
        self._redis = redis
        self._keys = keys
        self._lookup = lookup
        self._set_line = Script(redis, "cart_set")

    async def quantities(self, user_id: str) -> dict[int, int]:
        raw = await self._redis.hgetall(self._keys.cart(user_id))
        return {int(k): int(v) for k, v in raw.items()}

    async def view(self, user_id: str, member: bool = False) -> dict[str, Any]:
        lines = await self.quantities(user_id)
        skus = await self._lookup(sorted(lines), member) if lines else {}
        items = []
        total = 0
        for sku_id in sorted(lines):
            qty = lines[sku_id]
            sku = skus.get(sku_id)
            if sku is None or not sku.published:
                items.append({"sku_id": sku_id, "qty": qty, "purchasable": False,
                              "problem": "not_available"})
                continue
            line_total = sku.price * qty
            enough = qty <= sku.available
            if enough:
                total += line_total
            items.append({
                "sku_id": sku_id, "product_id": sku.product_id, "name": sku.name,
                "attributes": sku.attributes, "qty": qty, "unit_price": sku.price,
                "list_price": sku.list_price,
                "line_total": line_total, "available": sku.available, "purchasable": enough,
                **({} if enough else {"problem": "insufficient_stock"}),
            })
        return {"items": items, "total": total, "currency": "CNY"}

    async def set_quantity(self, user_id: str, sku_id: int, qty: int, mode: str) -> None:
        sku = (await self._lookup([sku_id], False)).get(sku_id)
        if sku is None or not sku.published:
            raise not_found("SKU")
        cap = min(MAX_LINE_QTY, sku.available)
        code, current = await self._set_line(
            [self._keys.cart(user_id)], [sku_id, qty, mode, cap, MAX_LINES, CART_TTL_S]
        )
        if int(code) == 1:
            raise ApiError(
                409, "insufficient_stock",
                f"at most {cap} of this SKU can be in the cart",
                details={"available": sku.available, "in_cart": int(current),
                         "max_per_line": MAX_LINE_QTY},
            )
        if int(code) == 2:
            raise ApiError(409, "cart_full", f"a cart holds at most {MAX_LINES} different SKUs")

    async def remove(self, user_id: str, sku_id: int) -> None:
        await self._redis.hdel(self._keys.cart(user_id), str(sku_id))

    async def clear(self, user_id: str) -> None:
        await self._redis.delete(self._keys.cart(user_id))
