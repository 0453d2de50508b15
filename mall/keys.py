"""Every Redis key of the checkout core, built here and nowhere else.

All keys of one sale share the hash tag `{fs<id>}` so a script touching them runs on one
Redis Cluster slot. A sale split into K stock shards (seckill/shards.py) keeps shard 0 under
`{fs<id>}` and shard k under `{fs<id>.<k>}`: each shard has every key admission needs, so
one script on one slot still decides a purchase. Regular checkout keeps its idempotency
records, queued-order views and outbox under `{co}` and each SKU's sellable stock under
`{sku<id>}`. Everything is prefixed by the deployment's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

RELAY_GROUP = "relay"
ORDER_ID_PREFIX = "fs"
CHECKOUT_ORDER_PREFIX = "co"


@dataclass(frozen=True, slots=True)
class SaleKeys:
    meta: str
    stock: str
    buyers: str
    outbox: str
    _base: str
    shard: int = 0

    @property
    def transfers_out(self) -> str:
        """Units this shard gave to a sibling and the sibling has not confirmed (hash)."""
        return f"{self._base}:xfer:out"

    @property
    def transfers_in(self) -> str:
        """Ids of the transfers this shard has taken in (set), so a retry adds nothing."""
        return f"{self._base}:xfer:in"

    def idempotency(self, user_id: str, key: str) -> str:
        # user ids are [A-Za-z0-9_-]; the key follows the last ':' so the two never mix.
        return f"{self._base}:idem:{user_id}:{key}"

    def order_view(self, order_id: str) -> str:
        return f"{self._base}:order:{order_id}"

    def admission(self, user_id: str, idem_key: str | None, order_id: str) -> list[str]:
        """KEYS of admit.lua, in its order."""
        idem = self.idempotency(user_id, idem_key) if idem_key else f"{self._base}:idem:-"
        return [self.meta, self.stock, self.buyers, idem, self.order_view(order_id), self.outbox]

    def release(self, order_id: str) -> list[str]:
        """KEYS of release.lua, in its order."""
        return [self.stock, self.buyers, f"{self._base}:released:{order_id}"]

    def init(self) -> list[str]:
        """KEYS of init_sale.lua, in its order."""
        return [self.meta, self.stock, self.outbox]


@dataclass(frozen=True, slots=True)
class CheckoutCoreKeys:
    outbox: str
    _base: str

    def idempotency(self, user_id: str, key: str) -> str:
        return f"{self._base}:idem:{user_id}:{key}"

    def order_view(self, order_id: str) -> str:
        return f"{self._base}:order:{order_id}"

    def released(self, order_id: str) -> str:
        return f"{self._base}:released:{order_id}"

    def coupon_uses(self, user_coupon_id: int) -> str:
        """How many uses of a held coupon checkout ever reserved."""
        return f"{self._base}:coupon:{user_coupon_id}"

    def points_reserved(self, user_id: str) -> str:
        """How many points of a user checkout ever reserved for orders."""
        return f"{self._base}:points:{user_id}"


class Keys:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.outbox_registry = f"{namespace}:outboxes"
        self._sales: dict[int, SaleKeys] = {}
        base = f"{namespace}:{{{CHECKOUT_ORDER_PREFIX}}}"
        self.checkout = CheckoutCoreKeys(outbox=f"{base}:outbox", _base=base)

    @property
    def campaign_upkeep_lock(self) -> str:
        """Held by the one serving process that warms up and settles flash sales."""
        return f"{self.namespace}:campaigns:upkeep-lock"

    def sku_stock(self, sku_id: int) -> str:
        """Units of a SKU that regular checkout may still reserve."""
        return f"{self.namespace}:{{sku{sku_id}}}:stock"

    def sku_held(self, sku_id: int) -> str:
        """Units given back to a SKU in PostgreSQL whose way into `sku_stock` is not finished
        (lua/stock_give.lua)."""
        return f"{self.namespace}:{{sku{sku_id}}}:held"

    def order_view_of(self, order_id: str) -> str | None:
        """Where the queued view of an order lives, judged by its id; None for a foreign id."""
        sale = self.sale_of_order(order_id)
        if sale is not None:
            return sale.order_view(order_id)
        if is_checkout_order_id(order_id):
            return self.checkout.order_view(order_id)
        return None

    @property
    def order_view_pattern(self) -> str:
        """SCAN pattern of every queued-order view of the namespace (it may match other keys:
        keep only those `order_of_view` accepts)."""
        return f"{self.namespace}:{{*}}:order:*"

    def order_of_view(self, key: str) -> str | None:
        """The order id of a queued-order view key; None for any other key."""
        order_id = key.rpartition(":order:")[2]
        return order_id if self.order_view_of(order_id) == key else None

    def idempotency_record(self, route: str, user_id: str, key: str) -> str:
        """Idempotency record of a non-hot-path POST (see mall/idempotency.py)."""
        return f"{self.namespace}:idem:{route}:{user_id}:{key}"

    def sale(self, sale_id: int, shard: int = 0) -> SaleKeys:
        keys = self._sales.get((sale_id, shard))
        if keys is None:
            base = f"{self.namespace}:{{{_sale_tag(sale_id, shard)}}}"
            keys = SaleKeys(
                meta=f"{base}:meta",
                stock=f"{base}:stock",
                buyers=f"{base}:buyers",
                outbox=f"{base}:outbox",
                _base=base,
                shard=shard,
            )
            self._sales[(sale_id, shard)] = keys
        return keys

    def sale_shards(self, sale_id: int, shards: int) -> list[SaleKeys]:
        return [self.sale(sale_id, k) for k in range(shards)]

    def sale_of_order(self, order_id: str) -> SaleKeys | None:
        """The keys of the shard that accepted a flash-sale order; None for any other id."""
        parsed = parse_sale_order_id(order_id)
        return None if parsed is None else self.sale(*parsed)

    def release_of(self, sale_id: int, order_id: str) -> list[str]:
        """KEYS of release.lua for a flash-sale order: in the shard that accepted it."""
        return (self.sale_of_order(order_id) or self.sale(sale_id)).release(order_id)

    def sale_from_outbox(self, outbox_key: str) -> int:
        tag = outbox_key[outbox_key.index("{") + 1 : outbox_key.index("}")]
        return int(tag.removeprefix(ORDER_ID_PREFIX).partition(".")[0])


def _sale_tag(sale_id: int, shard: int) -> str:
    return f"{ORDER_ID_PREFIX}{sale_id}" if shard == 0 else f"{ORDER_ID_PREFIX}{sale_id}.{shard}"


def make_order_id(sale_id: int, unique_hex: str, shard: int = 0) -> str:
    """Order ids carry their sale and shard (`fs<sale>-…`, `fs<sale>.<k>-…`), so a queued
    order can be found in the slot that accepted it."""
    return f"{_sale_tag(sale_id, shard)}-{unique_hex}"


def _small_int(text: str, max_digits: int) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)


def parse_sale_order_id(order_id: str) -> tuple[int, int] | None:
    """(sale id, shard) of a flash-sale order id; None for any other string."""
    prefix, sep, rest = order_id.partition("-")
    if not sep or not prefix.startswith(ORDER_ID_PREFIX) or len(rest) != 32:
        return None
    sale_text, dot, shard_text = prefix.removeprefix(ORDER_ID_PREFIX).partition(".")
    sale_id = _small_int(sale_text, 18)
    shard = _small_int(shard_text, 3) if dot else 0
    if sale_id is None or shard is None or (dot and (shard == 0 or shard_text[0] == "0")):
        return None
    try:
        int(rest, 16)
    except ValueError:
        return None
    return sale_id, shard


def sale_of_order_id(order_id: str) -> int | None:
    parsed = parse_sale_order_id(order_id)
    return None if parsed is None else parsed[0]


def make_checkout_order_id(unique_hex: str) -> str:
    return f"{CHECKOUT_ORDER_PREFIX}-{unique_hex}"


def is_checkout_order_id(order_id: str) -> bool:
    prefix, sep, rest = order_id.partition("-")
    if prefix != CHECKOUT_ORDER_PREFIX or not sep or len(rest) != 32:
        return False
    try:
        int(rest, 16)
    except ValueError:
        return False
    return True
