"""Every payment provider callback is audited: genuine, forged, and to an unknown provider."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from checkout.payments.config import sandbox_secret
from checkout.payments.sandbox import SandboxProvider
from mall.settings import Settings
from tests.stack import auth

WEBHOOK = "/api/v1/payments/webhooks/sandbox"


async def open_payment(client: TestClient, settings: Settings, pg: asyncpg.Pool,
                       user: str) -> dict[str, Any]:
    order_id = f"ta-{uuid.uuid4().hex}"
    await pg.execute("INSERT INTO orders (order_id, user_id, status, total, created_at)"
                     " VALUES ($1, $2, 'pending_payment', 2500, $3)", order_id, user,
                     datetime.now(UTC))
    resp = await client.post(f"/api/v1/orders/{order_id}/payments", json={"provider": "sandbox"},
                             headers=auth(settings, user))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def signed(settings: Settings, payment: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"event_id": f"evt_{uuid.uuid4().hex}", "payment_id": payment["payment_id"],
                       "order_id": payment["order_id"], "amount": payment["amount"],
                       "status": "succeeded"}).encode()
    signature = SandboxProvider(sandbox_secret(settings.jwt_secret)).sign(body)
    return body, {"X-Sandbox-Signature": signature, "Content-Type": "application/json"}


async def callbacks_since(pg: asyncpg.Pool, mark: int) -> list[dict[str, Any]]:
    rows = await pg.fetch("SELECT * FROM audit_log WHERE id > $1 AND kind = 'payment_callback'"
                          " ORDER BY id", mark)
    return [{**dict(r), "target": orjson.loads(r["target"]),
             "details": orjson.loads(r["details"])} for r in rows]


async def test_genuine_forged_and_misdirected_callbacks_are_recorded(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    payment = await open_payment(client, settings, pg, "aud-payer")
    body, headers = signed(settings, payment)
    mark = int(await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log"))
    forged_signature = "0" * 64
    resp = await client.post(WEBHOOK, data=body, headers={"X-Sandbox-Signature": forged_signature})
    assert resp.status == 401
    resp = await client.post(WEBHOOK, data=body, headers=headers)
    assert resp.status == 200 and (await resp.json())["outcome"] == "paid"
    resp = await client.post(WEBHOOK, data=body, headers=headers)
    assert resp.status == 200 and (await resp.json())["replayed"] is True
    resp = await client.post("/api/v1/payments/webhooks/paypal", data=body, headers=headers)
    assert resp.status == 404

    forged, paid, replayed, unknown = await callbacks_since(pg, mark)
    assert forged["target"] == {"provider": "sandbox"}
    assert forged["route"] == "/api/v1/payments/webhooks/{provider}"
    assert (forged["status"], forged["outcome"]) == (401, "invalid_signature")
    assert forged["details"]["signature_valid"] is False
    assert forged["actor"] is None
    assert (paid["status"], paid["outcome"]) == (200, "paid")
    assert paid["details"]["signature_valid"] is True
    assert paid["details"]["payment_id"] == payment["payment_id"]
    assert replayed["details"]["replayed"] is True and replayed["outcome"] == "paid"
    assert (unknown["status"], unknown["target"]) == (404, {"provider": "paypal"})
    assert unknown["details"]["signature_valid"] is None
    stored = await pg.fetchval("SELECT count(*) FROM audit_log WHERE id > $1"
                               " AND (audit_log::text LIKE '%' || $2 || '%'"
                               " OR audit_log::text LIKE '%' || $3 || '%')",
                               mark, headers["X-Sandbox-Signature"], forged_signature)
    assert stored == 0


async def test_the_sandbox_pay_route_records_its_callback(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    payment = await open_payment(client, settings, pg, "aud-sandbox-payer")
    mark = int(await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log"))
    resp = await client.post(f"/api/v1/sandbox/pay/{payment['payment_id']}",
                             headers=auth(settings, "aud-sandbox-payer"))
    assert resp.status == 200, await resp.text()
    [callback] = await callbacks_since(pg, mark)
    assert callback["details"]["payment_id"] == payment["payment_id"]
    assert callback["outcome"] == "paid" and callback["details"]["signature_valid"] is True
    # The customer's own request is not audited: only the provider's callback is.
    assert await pg.fetchval("SELECT count(*) FROM audit_log WHERE id > $1", mark) == 1
