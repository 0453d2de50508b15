"""Every Redis key of the checkout core, built here and nowhere else.

All keys of one sale share the hash tag `{fs<id>}` so a script touching them runs on one
Redis Cluster slot. Regular checkout keeps its idempotency records, queued-order views and
outbox under `{co}` and each SKU's sellable stock under `{sku<id>}`. Everything is prefixed by
the deployment's namespace.
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

    def order_view_of(self, order_id: str) -> str | None:
        """Where the queued view of an order lives, judged by its id; None for a foreign id."""
        sale_id = sale_of_order_id(order_id)
        if sale_id is not None:
            return self.sale(sale_id).order_view(order_id)
        if is_checkout_order_id(order_id):
            return self.checkout.order_view(order_id)
        return None

    def idempotency_record(self, route: str, user_id: str, key: str) -> str:
        """Idempotency record of a non-hot-path POST (see mall/idempotency.py)."""
        return f"{self.namespace}:idem:{route}:{user_id}:{key}"

    def sale(self, sale_id: int) -> SaleKeys:
        keys = self._sales.get(sale_id)
        if keys is None:
            base = f"{self.namespace}:{{{ORDER_ID_PREFIX}{sale_id}}}"
            keys = SaleKeys(
                meta=f"{base}:meta",
                stock=f"{base}:stock",
                buyers=f"{base}:buyers",
                outbox=f"{base}:outbox",
                _base=base,
            )
            self._sales[sale_id] = keys
        return keys

    def sale_from_outbox(self, outbox_key: str) -> int:
        tag = outbox_key[outbox_key.index("{") + 1 : outbox_key.index("}")]
        return int(tag.removeprefix(ORDER_ID_PREFIX))


def make_order_id(sale_id: int, unique_hex: str) -> str:
    """Order ids carry their sale so a queued order can be found in its sale's slot."""
    return f"{ORDER_ID_PREFIX}{sale_id}-{unique_hex}"


def sale_of_order_id(order_id: str) -> int | None:
    prefix, sep, rest = order_id.partition("-")
    if not sep or not prefix.startswith(ORDER_ID_PREFIX) or len(rest) != 32:
        return None
    digits = prefix.removeprefix(ORDER_ID_PREFIX)
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return None
    try:
        int(rest, 16)
    except ValueError:
        return None
    return int(digits)


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
