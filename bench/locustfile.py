"""A promotion day against a running mall, for Locust.

Browsers search (Chinese and English terms, category filters) and open products, reusing the
ETag; pollers watch the flash sale; buyers click "buy" on it (first `403 not_started`, then the
burst at the start time, then `409 sold_out` / `limit_reached`); shoppers fill a cart and check
out; payers check out, wait until the writer persisted the order and pay with the sandbox.

Every simulated user has its own customer token (`sub` "lc<n>") signed with the mall's secret
(`Settings.from_env().jwt_secret`). The data comes from the plan that `bench.locust_run`
writes (path in LOCUST_MALL_PLAN); the buyers' accepted order ids are appended to the file
named by LOCUST_MALL_ACCEPTED so the run can check them afterwards, and a tally of the answers
(by scenario, status and error code) is written to LOCUST_MALL_OUTCOMES when Locust quits.

    python -m bench.locust_run            # prepares the data, runs this file headless
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, constant_pacing, events, task

from mall.auth import issue_token
from mall.settings import Settings

OUT = Path(__file__).resolve().parent / "out"
PLAN: dict[str, Any] = json.loads(
    Path(os.environ.get("LOCUST_MALL_PLAN", OUT / "locust-plan.json")).read_text())
ACCEPTED = Path(os.environ.get("LOCUST_MALL_ACCEPTED", OUT / "locust-accepted.txt"))
OUTCOMES = Path(os.environ.get("LOCUST_MALL_OUTCOMES", OUT / "locust-outcomes.json"))
SECRET = Settings.from_env().jwt_secret
TOKEN_TTL_S = 6 * 3600
PERSIST_WAIT_S = 15.0
_numbers = itertools.count(1)
_tally: Counter[str] = Counter()
_first_accept: list[str] = []

ADDRESS = {"recipient": "Li Lei 李雷", "phone": "+86 138 0013 8000", "province": "上海市",
           "city": "上海市", "district": "浦东新区", "line": "世纪大道 100 号",
           "postal_code": "200120"}
SALE_URL = f"/api/v1/flash-sales/{PLAN['sale_id']}"


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _judge(label: str, response: Any, ok: dict[int, set[str] | None]) -> bool:
    """Mark a catch_response answer: a status in `ok` passes (with one of its error codes)."""
    _tally[f"{label} {response.status_code} {_error_code(response)}".strip()] += 1
    if response.status_code in ok:
        codes = ok[response.status_code]
        if codes is None or _error_code(response) in codes:
            response.success()
            return True
    response.failure(f"{response.status_code} {_error_code(response) or response.text[:80]}")
    return False


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    OUTCOMES.write_text(json.dumps({"answers": dict(sorted(_tally.items())),
                                    "first_accept_at": _first_accept[:1]}, indent=2))
    # Locust's CSV writer rewrites its files once a second and does not write again on
    # shutdown; every user has stopped by now, so one more pass makes the CSV final.
    gevent.sleep(1.5)


class Customer(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.sub = f"lc{next(_numbers)}"
        token = issue_token(SECRET, self.sub, "customer", TOKEN_TTL_S)
        self.client.headers["Authorization"] = f"Bearer {token}"


class Browser(Customer):
    """Searches and opens products; a product seen before is asked for with its ETag."""

    weight = 10
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        self.etags: dict[int, str] = {}

    @task(4)
    def search(self) -> None:
        params: dict[str, Any] = {"q": random.choice(PLAN["terms"]), "limit": 20}
        if random.random() < 0.3:
            params["category_id"] = random.choice(PLAN["category_ids"])
        self.client.get("/api/v1/products", params=params, name="/api/v1/products?q=")

    @task(1)
    def category(self) -> None:
        self.client.get("/api/v1/products", name="/api/v1/products?category_id=",
                        params={"category_id": random.choice(PLAN["category_ids"]),
                                "sort": random.choice(["price_asc", "sales", "newest"])})

    @task(4)
    def detail(self) -> None:
        product_id = random.choice(PLAN["product_ids"])
        etag = self.etags.get(product_id)
        headers = {"If-None-Match": etag} if etag else {}
        with self.client.get(f"/api/v1/products/{product_id}", headers=headers,
                             name="/api/v1/products/[id]", catch_response=True) as resp:
            if _judge("detail", resp, {200: None, 304: None}) and resp.headers.get("ETag"):
                self.etags[product_id] = resp.headers["ETag"]


class Poller(Customer):
    """Keeps the flash sale's page open: its countdown and remaining stock, every second."""

    weight = 3
    wait_time = constant_pacing(1)

    @task
    def poll(self) -> None:
        self.client.get(SALE_URL, name="/api/v1/flash-sales/[id]")


class Buyer(Customer):
    """Clicks "buy" on the flash sale; every click is a new Idempotency-Key."""

    weight = 4
    wait_time = between(0.5, 1.5)

    @task
    def click(self) -> None:
        with self.client.post(f"{SALE_URL}/orders", json={"qty": 1},
                              headers={"Idempotency-Key": uuid.uuid4().hex},
                              name="/api/v1/flash-sales/[id]/orders",
                              catch_response=True) as resp:
            ok = {202: None, 409: {"sold_out", "limit_reached"}, 403: {"not_started"}}
            if _judge("buy", resp, ok) and resp.status_code == 202:
                _first_accept[:] = _first_accept or [datetime.now(UTC).isoformat()]
                with ACCEPTED.open("a") as out:
                    out.write(resp.json()["order_id"] + "\n")


class Shopper(Customer):
    """Adds a product or two to the cart, then checks the cart out."""

    weight = 2
    wait_time = between(2, 5)

    @task
    def shop(self) -> None:
        for sku in random.sample(PLAN["sku_ids"], k=random.randint(1, 2)):
            with self.client.post("/api/v1/cart/items", json={"sku_id": sku,
                                                              "qty": random.randint(1, 2)},
                                  name="/api/v1/cart/items", catch_response=True) as resp:
                if not _judge("cart", resp, {200: None, 409: {"insufficient_stock"}}):
                    return
        body: dict[str, Any] = {"delivery": random.choice(["pickup", "standard"])}
        if body["delivery"] == "standard":
            body["address"] = ADDRESS
        with self.client.post("/api/v1/checkout", json=body, name="/api/v1/checkout (cart)",
                              headers={"Idempotency-Key": uuid.uuid4().hex},
                              catch_response=True) as resp:
            if _judge("checkout", resp, {202: None, 409: {"insufficient_stock"},
                                          422: {"cart_empty"}}):
                if resp.status_code != 202:
                    self.client.delete("/api/v1/cart", name="/api/v1/cart")


class Payer(Customer):
    """Buys one item, waits until the order is persisted, then pays it in the sandbox."""

    weight = 1
    wait_time = between(2, 5)

    @task
    def buy_and_pay(self) -> None:
        body = {"items": [{"sku_id": random.choice(PLAN["sku_ids"]), "qty": 1}],
                "delivery": "standard", "address": ADDRESS}
        with self.client.post("/api/v1/checkout", json=body, name="/api/v1/checkout (direct)",
                              headers={"Idempotency-Key": uuid.uuid4().hex},
                              catch_response=True) as resp:
            if not _judge("pay-checkout", resp, {202: None, 409: {"insufficient_stock"}}) \
                    or resp.status_code != 202:
                return
            order_id = resp.json()["order_id"]
        if not self._persisted(order_id):
            return
        with self.client.post(f"/api/v1/orders/{order_id}/payments", json={"provider": "sandbox"},
                              name="/api/v1/orders/[id]/payments", catch_response=True) as resp:
            if not _judge("payment", resp, {200: None, 201: None}):
                return
            payment_id = resp.json()["payment_id"]
        with self.client.post(f"/api/v1/sandbox/pay/{payment_id}",
                              name="/api/v1/sandbox/pay/[id]", catch_response=True) as resp:
            if _judge("sandbox-pay", resp, {200: None}) and resp.json().get("outcome") != "paid":
                resp.failure(f"outcome {resp.json().get('outcome')}")

    def _persisted(self, order_id: str) -> bool:
        started = time.monotonic()
        while time.monotonic() - started < PERSIST_WAIT_S:
            with self.client.get(f"/api/v1/orders/{order_id}", name="/api/v1/orders/[id]",
                                 catch_response=True) as resp:
                if not _judge("order", resp, {200: None}):
                    return False
                if resp.json()["status"] != "queued":
                    return True
            time.sleep(0.2)
        self.environment.events.request.fire(
            request_type="WAIT", name="order persisted", response_length=0, context={},
            response_time=(time.monotonic() - started) * 1000, response=None,
            exception=TimeoutError(f"still queued after {PERSIST_WAIT_S:g}s"))
        return False
