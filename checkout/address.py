"""The shipping address of an order, chosen as checkout chooses it: one of the buyer's saved
addresses (`address_id`) or a full address given inline. Checkout uses it when it places an
order, and order_writer when a buyer sets the address of an order placed without one (a
flash-sale order). Both seal it with `mall.crypto.seal_order_address`."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from mall.errors import invalid
from mall.ports import AddressBook

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
AddressId = Annotated[int, msgspec.Meta(ge=1, le=2**62)]


class InlineAddress(msgspec.Struct, forbid_unknown_fields=True):
    recipient: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 -]{5,20}$")]
    province: Short
    city: Short
    line: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    district: Annotated[str, msgspec.Meta(max_length=60)] = ""
    postal_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z -]{0,12}$")] = ""


class AddressNotFound(Exception):
    """`address_id` is not one of the user's saved addresses."""


async def choose_address(book: AddressBook | None, user_id: str, address_id: int | None,
                         address: InlineAddress | None) -> dict[str, Any] | None:
    """The address given, as a JSON-able dict; None when neither is given. 422 for both;
    AddressNotFound for an id that is not the user's (each caller answers it its own way)."""
    if address_id is not None and address is not None:
        raise invalid("give either address_id or address, not both")
    if address is not None:
        return msgspec.to_builtins(address)  # type: ignore[no-any-return]
    if address_id is None:
        return None
    found = await book.get(user_id, address_id) if book is not None else None
    if found is None:
        raise AddressNotFound(address_id)
    return found

