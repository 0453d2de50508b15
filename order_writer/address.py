"""The buyer sets the shipping address of an order placed without one (a flash-sale purchase
carries none) or changes it, while the order is unpaid or paid and not yet shipped.

The address is chosen as checkout chooses it (checkout.address) and sealed the same way
(mall.crypto.seal_order_address, bound to the order id). The change is written to the order's
history without the address itself (personal data stays sealed in orders.address only).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from checkout.address import AddressId, AddressNotFound, InlineAddress, choose_address
from mall.crypto import DataCipher, seal_order_address
from mall.errors import ApiError, invalid
from mall.ports import AddressBook
from order_writer import history
from order_writer.lifecycle import lock_order

CHANGEABLE_ON: frozenset[str] = frozenset({"pending_payment", "paid"})
SET_ADDRESS = "UPDATE orders SET address = $2::jsonb WHERE order_id = $1 AND shipped_at IS NULL"
HAS_ADDRESS = "SELECT address IS NOT NULL FROM orders WHERE order_id = $1"


class OrderAddressBody(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of: a saved address of the caller, or a full address."""

    address_id: AddressId | None = None
    address: InlineAddress | None = None


async def choose(book: AddressBook | None, user_id: str,
                 body: OrderAddressBody) -> dict[str, Any]:
    """The address the body names; 422 for neither, both, or an id not the caller's."""
    try:
        chosen = await choose_address(book, user_id, body.address_id, body.address)
    except AddressNotFound:
        raise invalid("address_id is not one of your saved addresses") from None
    if chosen is None:
        raise invalid("give address_id or address")
    return chosen


def not_changeable(status: str) -> ApiError:
    return ApiError(409, "address_not_changeable",
                    "the address can change only before the order ships",
                    details={"current_status": status})


async def set_address(conn: asyncpg.Connection, cipher: DataCipher, order_id: str,
                      user_id: str, address: dict[str, Any], address_id: int | None) -> str:
    """Seal and store the address under the order's row lock; returns the order's status.
    404 for an order that is not the user's, 409 address_not_changeable after shipping."""
    order = await lock_order(conn, order_id, owner=user_id)
    status: str = order["status"]
    if status not in CHANGEABLE_ON:
        raise not_changeable(status)
    had_address = bool(await conn.fetchval(HAS_ADDRESS, order_id))
    sealed = msgspec.json.encode(seal_order_address(cipher, order_id, address)).decode()
    if await conn.execute(SET_ADDRESS, order_id, sealed) != "UPDATE 1":
        raise not_changeable(status)
    await history.append(conn, order_id, user_id, status, status,
                         "address_changed" if had_address else "address_set",
                         {"source": "saved" if address_id is not None else "given",
                          "address_id": address_id})
    return status
