"""Delivery options and their fees (fen)."""

from __future__ import annotations

from typing import Literal

Delivery = Literal["standard", "express", "pickup"]

FEES: dict[str, int] = {"standard": 800, "express": 2000, "pickup": 0}
FREE_STANDARD_FROM = 9900  # standard delivery is free from this subtotal up


def delivery_fee(option: str, subtotal: int) -> int:
    if option == "standard" and subtotal >= FREE_STANDARD_FROM:
        return 0
    return FEES[option]
