"""Regular checkout through the same core as flash sales.

Prices come from the catalog, the stock of every line is reserved all or nothing by one atomic
Lua call (lua/reserve.lua), and the order goes to the same outbox, relay, queue and writer as a
flash-sale order, so it inherits the same guarantees: no oversell, no lost and no duplicate
order. The answer is `202 queued`; the writer turns it into `pending_payment`.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Annotated, Any

import asyncpg
import msgspec
import orjson
from redis.asyncio import Redis

from catalog_api.availability import sellable_skus
from checkout.address import AddressNotFound, InlineAddress, choose_address
from checkout.cart import MAX_LINE_QTY, CartService
from checkout.coupons import PricedLine
from checkout.delivery import Delivery, delivery_fee
from checkout.promotions import Deductions, deductions, is_member
from checkout.reservation import Reservation
from mall.crypto import DataCipher, seal_order_address
from mall.errors import ApiError, invalid
from mall.keys import RELAY_GROUP, Keys, make_checkout_order_id
from mall.lua import Script
from mall.ports import AddressBook
from mall.stock_mirror import StockMirror

MAX_LINES = 50
MAX_COUPONS = 5
MAX_POINTS = 10**9
NO_STOCK_KEY = 5  # lua/reserve.lua: a line's SKU has no stock key yet


class CheckoutLine(msgspec.Struct, forbid_unknown_fields=True):
    sku_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    qty: Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QTY)]


Lines = Annotated[list[CheckoutLine], msgspec.Meta(min_length=1, max_length=MAX_LINES)]


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    items: Lines | None = None
    address_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)] | None = None
    address: InlineAddress | None = None
    delivery: Delivery = "standard"
    # ids of coupons in the caller's wallet (GET /api/v1/me/coupons)
    coupons: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**62)]],
                       msgspec.Meta(max_length=MAX_COUPONS)] = []
    # membership points to spend as part payment (POINT_VALUE_FEN each)
    points: Annotated[int, msgspec.Meta(ge=0, le=MAX_POINTS)] = 0


def fingerprint(req: CheckoutRequest) -> str:
    """Of the request as sent (a retry from the cart finds the cart already emptied)."""
    items = sorted((line.sku_id, line.qty) for line in req.items) if req.items else None
    canonical = msgspec.json.encode([items, req.address_id, req.address, req.delivery,
                                     sorted(req.coupons), req.points])
    return hashlib.sha256(canonical).hexdigest()


class CheckoutService:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: Keys, cart: CartService,
                 addresses: AddressBook | None, record_ttl_s: int,
                 cipher: DataCipher) -> None:
        self._pool = pool
        # Seals the shipping address before the order leaves this process (Redis view, outbox,
        # RabbitMQ, orders.address); by default with the MALL_DATA_KEY of the environment.
        self._cipher = cipher
        self._redis = redis
        self._keys = keys
        self._cart = cart
        self._addresses = addresses
        self._ttl = record_ttl_s
        self._reserve = Script(redis, "reserve")
        self._mirror = StockMirror(redis, keys)

    async def prepare(self) -> None:
        """Make the checkout outbox known to the relay."""
        outbox = self._keys.checkout.outbox
        await self._redis.sadd(self._keys.outbox_registry, outbox)
        try:
            await self._redis.xgroup_create(outbox, RELAY_GROUP, id="0", mkstream=True)
        except Exception as exc:  # the group exists already
            if "BUSYGROUP" not in str(exc):
                raise

    async def place(self, user_id: str, role: str, req: CheckoutRequest, idem_key: str | None
                    ) -> dict[str, Any]:
        if idem_key:
            replayed = await self._replay(user_id, req, idem_key)
            if replayed is not None:
                return {"order_id": replayed, "status": "queued"}
        if len(set(req.coupons)) != len(req.coupons):
            raise invalid("a coupon can be used once per order")
        from_cart = req.items is None
        lines = await self._lines(user_id, req)
        address = await self._address(user_id, req)
        priced = await self._price(lines, await is_member(self._pool, user_id, role))
        subtotal = sum(p.unit_price * p.qty for p in priced)
        off = await deductions(self._pool, user_id, req.coupons, req.points, priced)
        goods = subtotal - off.discount
        fee = delivery_fee(req.delivery, goods)
        order_id = make_checkout_order_id(os.urandom(16).hex())
        order = {
            "order_id": order_id, "user_id": user_id, "sale_id": None,
            "items": [{"sku_id": p.sku_id, "qty": p.qty, "price": p.unit_price} for p in priced],
            "total": goods - off.points_value + fee, "shipping_fee": fee,
            "discount": off.discount, "coupon_ids": [c for c, _ in off.coupons],
            "points_used": off.points.wanted if off.points else 0,
            "delivery": req.delivery,
            "address": None if address is None
            else seal_order_address(self._cipher, order_id, address),
            "accepted_at_ms": int(time.time() * 1000),
        }
        accepted_id, replay = await self._reserve_all(user_id, req, priced, off, order,
                                                      idem_key)
        if from_cart and not replay:
            for p in priced:
                await self._cart.remove(user_id, p.sku_id)
        if replay:
            return {"order_id": accepted_id, "status": "queued"}
        return {"order_id": accepted_id, "status": "queued", "total": order["total"],
                "shipping_fee": fee, "discount": off.discount,
                "points_used": order["points_used"]}

    async def _replay(self, user_id: str, req: CheckoutRequest, idem_key: str) -> str | None:
        """The order of an earlier accepted request with this key (reserve.lua checks again
        atomically; this early look lets a retry skip pricing and an emptied cart)."""
        seen = await self._redis.get(self._keys.checkout.idempotency(user_id, idem_key))
        if seen is None:
            return None
        order_id, _, fp = seen.decode().partition("|")
        if fp != fingerprint(req):
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used with a different request body")
        return order_id

    async def _lines(self, user_id: str, req: CheckoutRequest) -> dict[int, int]:
        raw = ([(line.sku_id, line.qty) for line in req.items] if req.items is not None
               else list((await self._cart.quantities(user_id)).items()))
        if not raw:
            raise ApiError(422, "cart_empty", "there is nothing to check out")
        lines: dict[int, int] = {}
        for sku_id, qty in raw:
            lines[sku_id] = lines.get(sku_id, 0) + qty
        if any(qty > MAX_LINE_QTY for qty in lines.values()):
            raise invalid(f"at most {MAX_LINE_QTY} units of one SKU per order")
        return lines

    async def _address(self, user_id: str, req: CheckoutRequest) -> dict[str, Any] | None:
        try:
            found = await choose_address(self._addresses, user_id, req.address_id, req.address)
        except AddressNotFound:
            raise ApiError(404, "not_found", "address not found") from None
        if found is None and req.delivery != "pickup":
            raise invalid("a shipping address is needed unless delivery is pickup")
        return found

    async def _price(self, lines: dict[int, int], member: bool) -> list[PricedLine]:
        """The lines priced from the catalog (the caller's price: price lists, member prices).
        Whether their units are free is decided in Redis alone, by lua/reserve.lua."""
        skus = await sellable_skus(self._pool, list(lines), member=member)
        priced = []
        for sku_id in sorted(lines):
            sku = skus.get(sku_id)
            if sku is None or not sku.published:
                raise ApiError(409, "not_available", f"SKU {sku_id} cannot be bought",
                               details={"sku_id": sku_id})
            priced.append(PricedLine(sku_id, sku.product_id, lines[sku_id], sku.price))
        return priced

    async def _reserve_all(self, user_id: str, req: CheckoutRequest,
                           priced: list[PricedLine], off: Deductions, order: dict[str, Any],
                           idem_key: str | None) -> tuple[str, bool]:
        reservation = Reservation(
            user_id=user_id, order_id=order["order_id"], order_json=orjson.dumps(order),
            ttl_s=self._ttl, lines=[(p.sku_id, p.qty) for p in priced],
            coupons=off.coupons, points=off.points, idem_key=idem_key,
            fingerprint=fingerprint(req) if idem_key else "")
        code, rest = await self._reserve_loaded(reservation, priced)
        if code in (0, 1):
            value = rest[0]
            return (value.decode() if isinstance(value, bytes) else str(value)), code == 1
        if code == 2:
            line, left = int(rest[0]), int(rest[1])
            sku_id = priced[line - 1].sku_id
            raise ApiError(409, "insufficient_stock", f"only {left} of SKU {sku_id} left",
                           details={"sku_id": sku_id, "available": left})
        if code == 3:
            raise ApiError(409, "points_insufficient",
                           "other orders being placed hold some of these points",
                           details={"available": int(rest[0])})
        if code == 4:
            coupon_id = off.coupons[int(rest[0]) - 1][0]
            raise ApiError(409, "coupon_used", f"coupon {coupon_id} is used by another order",
                           details={"coupon_id": coupon_id})
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request body")

    async def _reserve_loaded(self, reservation: Reservation, priced: list[PricedLine]
                              ) -> tuple[int, list[Any]]:
        """Run lua/reserve.lua. A SKU whose stock key does not exist yet gets it from
        PostgreSQL under its row lock (StockMirror.ensure), then the whole reservation runs
        again, so each line's key is created at most once."""
        for _ in range(len(priced) + 1):
            code, *rest = await self._reserve(*reservation.call(self._keys))
            if int(code) != NO_STOCK_KEY:
                return int(code), rest
            sku_id = priced[int(rest[0]) - 1].sku_id
            if await self._mirror.ensure(self._pool, sku_id) is None:
                raise ApiError(409, "not_available", f"SKU {sku_id} cannot be bought",
                               details={"sku_id": sku_id})
        raise RuntimeError("lua/reserve.lua kept finding a stock key missing")
