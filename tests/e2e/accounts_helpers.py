"""HTTP helpers shared by the accounts end-to-end tests."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from accounts.codes import LoggingCodeSender
from accounts.keys import AccountKeys
from accounts.resources import CODE_SENDER
from mall.app import create_app
from mall.settings import Settings

PASSWORD = "correct horse battery"


def unique_phone() -> str:
    """A valid mainland mobile number, formatted the way people type it."""
    digits = f"{secrets.randbelow(10**8):08d}"
    return f"139 {digits[:4]} {digits[4:]}"


def e164(phone: str) -> str:
    return "+86" + phone.replace(" ", "")


def unique_email() -> str:
    return f"Buyer.{uuid.uuid4().hex[:12]}@Example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: TestClient, password: str = PASSWORD,
                   **login: str) -> dict[str, Any]:
    """Sign up with phone= or email=; the 201 body {user, tokens}."""
    if not login:
        login = {"phone": unique_phone()}
    resp = await client.post("/api/v1/auth/register", json={**login, "password": password})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def login(client: TestClient, login_: str, password: str = PASSWORD) -> tuple[int, Any]:
    resp = await client.post("/api/v1/auth/login", json={"login": login_, "password": password})
    return resp.status, await resp.json()


def code_sender(client: TestClient) -> LoggingCodeSender:
    sender = client.app[CODE_SENDER]
    assert isinstance(sender, LoggingCodeSender)
    return sender


async def clear_ip_failures(redis: Redis, settings: Settings, ip: str = "127.0.0.1") -> None:
    """Tests of the shared app all come from one IP: start each with its counter at zero."""
    await redis.delete(AccountKeys(settings.namespace).ip_failures(ip))


@contextlib.asynccontextmanager
async def private_client(settings: Settings) -> AsyncIterator[TestClient]:
    """An app of its own (for settings the shared app cannot have), without the relay."""
    server = TestServer(create_app(settings.with_(relay_enabled=False)))
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
