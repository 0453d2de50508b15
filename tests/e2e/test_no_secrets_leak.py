"""No secret in an error body or a log line: the errors are driven for real (PostgreSQL cut
off behind a proxy, duplicate sign-ups, forged tokens and payment signatures, a bad DSN at
startup) and every answer and every log record is searched for the DSN password, the JWT
secret, the data key, the user's password, tokens and the full phone number."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from checkout.payments import http as payments_http
from mall.app import create_app
from mall.settings import Settings
from tests.e2e.accounts_helpers import bearer, e164, unique_phone
from tests.stack import free_port, token

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "/api/v1/payments/webhooks/sandbox"


class TcpProxy:
    """Forwards a local port to PostgreSQL; `cut()` drops every connection and stops
    listening, as when the database goes away."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def with_password(dsn: str, password: str, port: int | str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def leaky(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[tuple[TestClient, Settings, TcpProxy]]:
    # The sandbox provider is on by default only with the development secret; this app has its
    # own secret, so turn the sandbox on to have a signature to get wrong.
    monkeypatch.setenv("MALL_PAYMENTS_SANDBOX", "on")
    proxy = TcpProxy(urlsplit(fresh_settings.database_url).port or 5432)
    await proxy.start()
    settings = fresh_settings.with_(
        database_url=with_password(fresh_settings.database_url, "Pg-" + secrets.token_hex(12),
                                   proxy.port),
        jwt_secret="jwt-" + secrets.token_urlsafe(40),
        data_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        relay_enabled=False,
    )
    app = create_app(settings)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource}
    if WEBHOOK.replace("sandbox", "{provider}") not in paths:
        payments_http.setup(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, settings, proxy
    finally:
        await client.close()
        await proxy.cut()


def password_of(dsn: str) -> str:
    return urlsplit(dsn).password or ""


def assert_no_secret(texts: list[str], secrets_: dict[str, str]) -> None:
    for name, secret in secrets_.items():
        assert len(secret) >= 8, name
        for text in texts:
            assert secret not in text, f"the {name} leaked: {text[:300]!r}"


async def test_errors_answer_and_log_no_secret(
    leaky: tuple[TestClient, Settings, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    client, settings, proxy = leaky
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def call(method: str, path: str, expect: int, **kwargs: object) -> dict:
        resp = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        text = await resp.text()
        if resp.status >= 400:  # success answers carry the caller's own tokens and phone
            bodies.append(text)
        assert resp.status == expect, (path, resp.status, text)
        return dict(await resp.json()) if text else {}

    phone = unique_phone()
    password = "Pw-" + secrets.token_urlsafe(12)
    session = await call("POST", "/api/v1/auth/register", 201,
                         json={"phone": phone, "password": password})
    access, refresh = session["tokens"]["access_token"], session["tokens"]["refresh_token"]
    # A unique violation: the same phone again, also all at once.
    answers = await asyncio.gather(*(client.post("/api/v1/auth/register", json={
        "phone": e164(phone), "password": password}) for _ in range(5)))
    for resp in answers:
        bodies.append(await resp.text())
        assert resp.status == 409
    # Wrong password, then a forged, an expired and a foreign-secret token, a reused refresh.
    await call("POST", "/api/v1/auth/login", 401, json={"login": phone, "password": password + "x"})
    await call("POST", "/api/v1/auth/codes", 202, json={"login": phone})
    await call("POST", "/api/v1/auth/login/code", 401, json={"login": phone, "code": "000000"})
    foreign = token(settings.with_(jwt_secret="another-secret-" + "x" * 30), "u1", "admin")
    for bad_token in (access + "x", access[:-8], foreign, "not-a-jwt"):
        await call("GET", "/api/v1/me", 401, headers=bearer(bad_token))
    await call("POST", "/api/v1/auth/refresh", 200, json={"refresh_token": refresh})
    await call("POST", "/api/v1/auth/refresh", 401, json={"refresh_token": refresh})
    # A payment callback with a forged signature.
    await call("POST", WEBHOOK, 401,
               data=b'{"event_id": "e1", "payment_id": "p1", "order_id": "o1", "amount": 1}',
               headers={"X-Sandbox-Signature": "0" * 64, "Content-Type": "application/json"})
    # PostgreSQL goes away: 503, and the log says so without the DSN.
    await proxy.cut()
    await call("GET", "/api/v1/me", 503, headers=bearer(access))
    await call("POST", "/api/v1/auth/login", 503, json={"login": phone, "password": password})

    logged = [r.getMessage() + "\n" + (
        "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else "")
        for r in caplog.records]
    assert any("unavailable" in line for line in logged)  # the 503 path was logged
    assert_no_secret(bodies + logged, {
        "DSN password": password_of(settings.database_url), "JWT secret": settings.jwt_secret,
        "data key": settings.data_key, "user password": password, "access token": access,
        "refresh token": refresh, "phone number (E.164)": e164(phone),
        "phone number": phone.replace(" ", "")[-11:],
    })


async def test_a_bad_dsn_at_startup_logs_no_password(fresh_settings: Settings,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db_password = "Pg-" + secrets.token_hex(12)
    # Nothing listens on the port: the app refuses to start.
    bad = with_password(fresh_settings.database_url, db_password, free_port())
    settings = fresh_settings.with_(database_url=bad, relay_enabled=False)
    server = TestServer(create_app(settings))
    with pytest.raises(Exception) as caught:
        await server.start_server()
    await server.close()
    texts = ["".join(traceback.format_exception(caught.value))]
    texts += [r.getMessage() for r in caplog.records]
    # The CLI, as an operator runs it, with a DSN that cannot be reached and one that is
    # malformed.
    for dsn in (bad, with_password(fresh_settings.database_url, db_password, "notaport")):
        env = {**os.environ, "MALL_DATABASE_URL": dsn, "MALL_NAMESPACE": settings.namespace}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mall.cli", "migrate", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode != 0
        texts.append(output.decode("utf-8", "replace"))
    assert_no_secret(texts, {"DSN password": db_password})
