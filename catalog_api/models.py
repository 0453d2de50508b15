"""Request bodies of the catalog routes, validated by msgspec, and their extra checks."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from mall.errors import invalid

MAX_PRICE = 10_000_000_000  # fen: 100 million CNY
MAX_STOCK = 100_000_000
MAX_ID = 2**62

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Price = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE)]
# A member price is above zero and at most the SKU's price (checked where both are known).
MemberPrice = Annotated[int, msgspec.Meta(ge=1, le=MAX_PRICE)]
Stock = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK)]
ProductName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
CategoryName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
ImageUrl = Annotated[str, msgspec.Meta(min_length=9, max_length=2048)]
ImageUrls = Annotated[list[ImageUrl], msgspec.Meta(max_length=10)]
AttrName = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
AttrValue = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Attributes = Annotated[dict[AttrName, AttrValue], msgspec.Meta(max_length=10)]


class NewSku(msgspec.Struct, forbid_unknown_fields=True):
    price: Price
    stock: Stock
    attributes: Attributes = {}


class AddedSku(NewSku, forbid_unknown_fields=True):
    """A SKU added to an existing product."""

    member_price: MemberPrice | None = None


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    name: ProductName
    skus: Annotated[list[NewSku], msgspec.Meta(min_length=1, max_length=100)]
    description: Description = ""
    category_id: Id | None = None
    tags: Tags = []
    image_urls: ImageUrls = []
    published: bool = True


class ProductEdit(msgspec.Struct, forbid_unknown_fields=True):
    name: ProductName | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    category_id: Id | None | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    image_urls: ImageUrls | UnsetType = UNSET


class SkuEdit(msgspec.Struct, forbid_unknown_fields=True):
    price: Price | UnsetType = UNSET
    stock: Stock | UnsetType = UNSET
    member_price: MemberPrice | None | UnsetType = UNSET  # null removes it


class NewCategory(msgspec.Struct, forbid_unknown_fields=True):
    name: CategoryName
    parent_id: Id | None = None


class CategoryEdit(msgspec.Struct, forbid_unknown_fields=True):
    name: CategoryName | UnsetType = UNSET
    parent_id: Id | None | UnsetType = UNSET


def clean_name(name: str, what: str = "name") -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise invalid(f"{what} must not be blank")
    return cleaned


def clean_tags(tags: list[str]) -> list[str]:
    """Tags are compared lower-cased and without surrounding spaces; duplicates collapse."""
    cleaned: list[str] = []
    for tag in tags:
        t = " ".join(tag.split()).lower()
        if not t:
            raise invalid("tags must not be blank")
        if t not in cleaned:
            cleaned.append(t)
    return cleaned


def clean_image_urls(urls: list[str]) -> list[str]:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
            raise invalid("image_urls must be absolute https URLs")
    return urls


def clean_attributes(attributes: dict[str, str]) -> dict[str, str]:
    cleaned = {" ".join(k.split()): " ".join(v.split()) for k, v in attributes.items()}
    if any(not k or not v for k, v in cleaned.items()) or len(cleaned) != len(attributes):
        raise invalid("SKU attribute names and values must not be blank or repeated")
    return cleaned
