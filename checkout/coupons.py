"""A priced order line, as checkout hands it to the promotion rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku_id: int
    product_id: int
    qty: int
    unit_price: int
