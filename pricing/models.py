"""Request bodies of the price-list routes, validated by msgspec, and their extra checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from mall.errors import invalid

MAX_PRICE = 10_000_000_000  # fen, as for SKU prices
MAX_ITEMS = 1000
MAX_ID = 2**62

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
ListName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
SkuId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
ListPrice = Annotated[int, msgspec.Meta(ge=1, le=MAX_PRICE)]


class PriceListItem(msgspec.Struct, forbid_unknown_fields=True):
    sku_id: SkuId
    price: ListPrice  # fen, below the SKU's own price


Items = Annotated[list[PriceListItem], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class NewPriceList(msgspec.Struct, forbid_unknown_fields=True):
    name: ListName
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    items: Items


class PriceListEdit(msgspec.Struct, forbid_unknown_fields=True):
    name: ListName | UnsetType = UNSET
    starts_at: AwareDatetime | UnsetType = UNSET
    ends_at: AwareDatetime | UnsetType = UNSET
    items: Items | UnsetType = UNSET  # replaces every item


def clean_list_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise invalid("name must not be blank")
    return cleaned


def check_window(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise invalid("ends_at must be after starts_at")
    if ends_at <= now:
        raise invalid("ends_at must be in the future")


def check_items(items: list[PriceListItem]) -> dict[int, int]:
    """The items as {sku_id: price}; a SKU named twice is refused."""
    prices = {item.sku_id: item.price for item in items}
    if len(prices) != len(items):
        raise invalid("each sku_id may appear only once")
    return prices
