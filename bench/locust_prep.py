"""The data of a Locust promotion day, created through the HTTP API as an admin.

A few categories and products with Chinese and English names (large stock, except one item
that runs out during the day), and one flash sale on its own product that starts a few
seconds after the run begins. The ids go to a small JSON plan the locustfile reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

CATEGORIES = ["手机 Phones", "电脑 Computers", "家居 Home"]
# (name, category index, price in fen, stock)
PRODUCTS = [
    ("Classic Phone 经典手机", 0, 199900, 10_000),
    ("Mini phone 迷你手机", 0, 129900, 10_000),
    ("无线耳机 Wireless headphones", 0, 39900, 10_000),
    ("Laptop 14 轻薄笔记本", 1, 549900, 10_000),
    ("机械键盘 Mechanical keyboard", 1, 45900, 10_000),
    ("Green tea 西湖龙井茶", 2, 8800, 10_000),
    ("Ceramic mug 陶瓷马克杯", 2, 3900, 10_000),
    ("限量版 Limited edition lamp 台灯", 2, 25900, 12),
]
SALE_PRODUCT = ("Flagship phone 旗舰手机 秒杀", 0, 599900)
TERMS = ["手机", "phone", "耳机", "headphones", "笔记本", "laptop", "茶", "tea", "键盘",
         "keyboard", "限量", "lamp", "phnoe", "杯"]


class Admin:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        resp = self.session.request(method, self.base + path, json=body, timeout=10)
        data = resp.json() if resp.content else None
        if resp.status_code not in ok:
            raise RuntimeError(f"{method} {path} answered {resp.status_code}: {data}")
        return resp.status_code, data


def _category(admin: Admin, name: str) -> int:
    status, made = admin.call("POST", "/api/v1/admin/categories", {"name": name},
                              ok=(201, 409))
    if status == 201:
        return int(made["id"])
    _, tree = admin.call("GET", "/api/v1/categories")  # made by an earlier run: look it up
    return next(int(c["id"]) for c in tree["items"] if c["name"] == name)


def _product(admin: Admin, name: str, category_id: int, price: int, stock: int
             ) -> dict[str, Any]:
    _, product = admin.call("POST", "/api/v1/admin/products", {
        "name": name, "category_id": category_id, "tags": ["promotion"],
        "skus": [{"price": price, "stock": stock}]})
    return product  # type: ignore[no-any-return]


def prepare(base: str, token: str, sale_stock: int, sale_delay_s: float,
            plan_path: Path) -> dict[str, Any]:
    admin = Admin(base, token)
    categories = [_category(admin, name) for name in CATEGORIES]
    products = [_product(admin, name, categories[c], price, stock)
                for name, c, price, stock in PRODUCTS]
    name, c, price = SALE_PRODUCT
    sale_product = _product(admin, name, categories[c], price, sale_stock)
    starts = datetime.now(UTC) + timedelta(seconds=sale_delay_s)
    _, sale = admin.call("POST", "/api/v1/admin/flash-sales", {
        "sku_id": sale_product["skus"][0]["id"], "price": price // 2, "stock": sale_stock,
        "per_user_limit": 1, "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat()})
    plan = {
        "sale_id": int(sale["id"]), "sale_stock": sale_stock, "sale_starts_at": sale["starts_at"],
        "product_ids": [int(p["id"]) for p in [*products, sale_product]],
        "sku_ids": [int(p["skus"][0]["id"]) for p in products],
        "category_ids": categories, "terms": TERMS,
    }
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps(plan, ensure_ascii=False, indent=2))
    return plan
