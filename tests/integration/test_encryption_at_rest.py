"""Personal data at rest, on the real services: nothing readable in PostgreSQL, Redis or
RabbitMQ; log-in by phone and phone uniqueness still work; rows written before sealing are
sealed by the backfill, which also re-seals after a key rotation."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from accounts.addresses import SELECT_ONE, address_view
from accounts.identity import Login
from accounts.users import find_by_login, user_view
from mall.app import create_app
from mall.crypto import USERS_PHONE, DataCipher, data_cipher, open_order_address
from mall.crypto_backfill import backfill
from mall.keys import Keys
from mall.migrate import drop_database, migrate
from mall.settings import Settings
from mall.topology import Topology
from tests.conftest import running_writer
from tests.e2e.accounts_helpers import PASSWORD, bearer, e164, register, unique_phone
from tests.e2e.helpers import create_product, wait_persisted
from tests.stack import auth, unique_namespace

RECIPIENT = "欧阳娜娜"
LINE = "西湖区文三路 478 号 9 幢"
ADDRESS_PHONE = "+8613512345678"
INLINE = {"recipient": "司马光明", "phone": "+8613612345678", "province": "上海",
          "city": "上海", "district": "黄浦", "line": "南京东路 88 号 1201",
          "postal_code": "200001"}


def national(e164_number: str) -> str:
    return e164_number.removeprefix("+86")


def assert_clear_of(blob: Any, secrets: list[str], where: str) -> None:
    text = blob if isinstance(blob, str) else (
        blob.decode("utf-8", "replace") if isinstance(blob, bytes) else repr(blob))
    for secret in secrets:
        assert secret not in text, f"{secret!r} readable in {where}"


async def raw_row(pg: asyncpg.Pool, query: str, *args: Any) -> str:
    """Every column of the row as PostgreSQL stores it, as one text (bytea as hex)."""
    return str(await pg.fetchval(query, *args))


async def test_checkout_leaves_no_plaintext_in_postgres_redis_or_rabbitmq(
    fresh_settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    settings = fresh_settings
    topology = Topology.for_namespace(settings.namespace)
    amqp = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await amqp.channel()
        exchange, _, _ = await topology.declare(channel)
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(exchange, topology.orders_routing_key)
        async with running_writer(settings):
            client = TestClient(TestServer(create_app(settings)))
            await client.start_server()
            try:
                await _flow(client, settings, pg, redis, tap)
            finally:
                await client.close()
    finally:
        await amqp.close()


async def _flow(client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis,
                tap: aio_pika.abc.AbstractQueue) -> None:
    phone = unique_phone()
    body = await register(client, phone=phone)
    user_id, headers = body["user"]["user_id"], bearer(body["tokens"]["access_token"])
    assert body["user"]["phone"] == e164(phone)
    resp = await client.post("/api/v1/me/addresses", headers=headers, json={
        "recipient": RECIPIENT, "phone": ADDRESS_PHONE, "province": "浙江省", "city": "杭州市",
        "district": "西湖区", "line": LINE, "postal_code": "310012"})
    assert resp.status == 201, await resp.text()
    address = await resp.json()
    assert address["recipient"] == RECIPIENT and address["line"] == LINE
    sku = await create_product(client, settings, stock=10, price=20000)
    orders = []
    for shipping in ({"address_id": address["id"]}, {"address": INLINE}):
        resp = await client.post("/api/v1/checkout", headers=headers,
                                 json={"items": [{"sku_id": sku, "qty": 1}], **shipping})
        assert resp.status == 202, await resp.text()
        orders.append((await resp.json())["order_id"])

    secrets = [national(e164(phone)), RECIPIENT, LINE, national(ADDRESS_PHONE), "文三路",
               INLINE["recipient"], national(INLINE["phone"]), INLINE["line"], "南京东路",
               "310012", "200001"]

    # RabbitMQ: the messages the relay published
    seen = b""
    for _ in range(200):
        message = await tap.get(no_ack=True, fail=False)
        if message is not None:
            seen += message.body
            if all(o.encode() in seen for o in orders):
                break
        else:
            await asyncio.sleep(0.05)
    assert all(o.encode() in seen for o in orders), "the relay published no message"
    assert_clear_of(seen, secrets, "a RabbitMQ message")

    for order_id in orders:
        view = await wait_persisted(client, settings, user_id, order_id)
        raw = await redis.get(Keys(settings.namespace).order_view_of(order_id))
        assert raw is not None and order_id.encode() in raw
        assert_clear_of(raw, secrets, "the Redis order view")
        stored = await raw_row(pg, "SELECT address::text FROM orders WHERE order_id = $1",
                               order_id)
        assert '"sealed"' in stored
        assert_clear_of(stored, secrets, "orders.address")
        # The owner and staff read the address back; the region stayed readable.
        assert view["address"]["province"] in ("浙江省", "上海")
        staff = await client.get(f"/api/v1/orders/{order_id}",
                                 headers=auth(settings, "staff1", "staff"))
        assert (await staff.json())["address"] == view["address"]
    first, second = [(await (await client.get(f"/api/v1/orders/{o}", headers=headers)).json())
                     ["address"] for o in orders]
    assert first["recipient"] == RECIPIENT and first["line"] == LINE
    assert first["phone"] == ADDRESS_PHONE and first["postal_code"] == "310012"
    assert second == INLINE

    users_row = await raw_row(pg, "SELECT u::text FROM users u WHERE user_id = $1", user_id)
    assert_clear_of(users_row, secrets, "the users row")
    assert await pg.fetchval("SELECT phone FROM users WHERE user_id = $1", user_id) is None
    address_row = await raw_row(pg, "SELECT a::text FROM addresses a WHERE id = $1",
                                address["id"])
    assert_clear_of(address_row, secrets, "the addresses row")
    assert "杭州市" in address_row  # the region is kept readable, by choice

    # Log-in by phone still works, in any spelling; the answers show the number.
    for spelling in (phone, e164(phone), "0086" + phone.replace(" ", "")):
        resp = await client.post("/api/v1/auth/login",
                                 json={"login": spelling, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["user"]["user_id"] == user_id
    me = await (await client.get("/api/v1/me", headers=headers)).json()
    assert me["phone"] == e164(phone)


async def test_one_account_per_phone_under_concurrent_sign_ups(client: TestClient,
                                                               pg: asyncpg.Pool,
                                                               settings: Settings) -> None:
    phone = unique_phone()
    spellings = [phone, e164(phone), "0086" + phone.replace(" ", ""), phone.replace(" ", "-")]
    answers = await asyncio.gather(*(
        client.post("/api/v1/auth/register",
                    json={"phone": spellings[i % len(spellings)], "password": PASSWORD})
        for i in range(16)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [201] + [409] * 15, statuses
    for resp in answers:
        if resp.status == 409:
            assert (await resp.json())["error"]["code"] == "account_exists"
    index = data_cipher(settings).blind_index(e164(phone), USERS_PHONE)
    assert await pg.fetchval("SELECT count(*) FROM users WHERE phone_hash = $1", index) == 1


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


LEGACY_PHONE = "+8613711112222"
LEGACY_ADDRESS = ("孙悟空", "+8613733334444", "福建省", "福州市", "鼓楼区", "花果山水帘洞 1 号",
                  "350001")


@pytest.fixture
async def legacy_database() -> Any:
    """A database at 0016 holding plaintext personal data, as the release before wrote it."""
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_seal_')}"
    await migrate(url, target=16)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO users (user_id, phone, email, password_hash) VALUES "
                           "('legacy-1', $1, NULL, 'x'), ('legacy-2', NULL, 'mail@example.com', "
                           "'x')", LEGACY_PHONE)
        await conn.execute(
            "INSERT INTO addresses (user_id, recipient, phone, province, city, district, line, "
            "postal_code, is_default) VALUES ('legacy-1', $1, $2, $3, $4, $5, $6, $7, true)",
            *LEGACY_ADDRESS)
        address = dict(zip(("recipient", "phone", "province", "city", "district", "line",
                            "postal_code"), LEGACY_ADDRESS, strict=True))
        await conn.execute(
            "INSERT INTO orders (order_id, user_id, status, total, created_at, address) "
            "VALUES ('co-legacy', 'legacy-1', 'pending_payment', 100, now(), $1::jsonb), "
            "       ('co-pickup', 'legacy-1', 'pending_payment', 100, now(), NULL)",
            orjson.dumps(address).decode())
    finally:
        await conn.close()
    yield url
    await drop_database(url)


async def test_backfill_seals_old_rows_and_reseals_after_rotation(legacy_database: str) -> None:
    url = legacy_database
    assert (await migrate(url))[0] == "up 0017_encrypt_personal_data"
    old_key = new_key()
    settings = Settings(database_url=url, data_key=old_key)
    cipher = data_cipher(settings)
    assert await backfill(url, settings) == {"users": 1, "addresses": 1, "orders": 1}
    assert await backfill(url, settings) == {"users": 0, "addresses": 0, "orders": 0}
    secrets = [national(LEGACY_PHONE), "孙悟空", national(LEGACY_ADDRESS[1]), "花果山", "350001"]
    conn = await asyncpg.connect(url)
    try:
        for query in ("SELECT string_agg(u::text, '|') FROM users u",
                      "SELECT string_agg(a::text, '|') FROM addresses a",
                      "SELECT string_agg(o::text, '|') FROM orders o"):
            assert_clear_of(await conn.fetchval(query), secrets, query)
        await _reads_back(conn, cipher)
        # Rotation: a new key seals, the old one still opens; the backfill re-seals.
        rotated = Settings(database_url=url, data_key=f"2:{new_key()},1:{old_key}")
        new_cipher = data_cipher(rotated)
        await _reads_back(conn, new_cipher)
        assert await backfill(url, rotated) == {"users": 1, "addresses": 1, "orders": 0}
        assert await conn.fetchval("SELECT get_byte(phone_enc, 1) FROM users "
                                   "WHERE user_id = 'legacy-1'") == 2
        assert await conn.fetchval("SELECT count(*) FROM addresses "
                                   "WHERE get_byte(line_enc, 1) = 2") == 1
        await _reads_back(conn, new_cipher)
        # The database cannot decrypt: going below 0017 now would lose data, so it is refused.
        with pytest.raises(asyncpg.RaiseError):
            await migrate(url, target=16)
    finally:
        await conn.close()


async def _reads_back(conn: asyncpg.Connection, cipher: DataCipher) -> None:
    row = await find_by_login(conn, Login("phone", LEGACY_PHONE), cipher)
    assert row is not None and user_view(row, cipher)["phone"] == LEGACY_PHONE
    other = await find_by_login(conn, Login("email", "mail@example.com"), cipher)
    assert other is not None and user_view(other, cipher)["phone"] is None
    address_id = await conn.fetchval("SELECT id FROM addresses WHERE user_id = 'legacy-1'")
    view = address_view(await conn.fetchrow(SELECT_ONE, address_id, "legacy-1"), cipher,
                        "legacy-1")
    assert (view["recipient"], view["phone"], view["line"], view["postal_code"]) == \
        (LEGACY_ADDRESS[0], LEGACY_ADDRESS[1], LEGACY_ADDRESS[5], LEGACY_ADDRESS[6])
    carried = orjson.loads(await conn.fetchval(
        "SELECT address FROM orders WHERE order_id = 'co-legacy'"))
    assert open_order_address(cipher, "co-legacy", carried)["recipient"] == "孙悟空"
    assert await conn.fetchval("SELECT address FROM orders WHERE order_id = 'co-pickup'") is None


async def test_down_is_clean_while_nothing_is_sealed() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_seal_')}"
    try:
        await migrate(url)
        assert (await migrate(url, target=16))[-1] == "down 0017_encrypt_personal_data"
        conn = await asyncpg.connect(url)
        try:
            with pytest.raises(asyncpg.NotNullViolationError):  # plaintext columns are back
                await conn.execute("INSERT INTO addresses (user_id, province, city, district) "
                                   "VALUES ('nobody', 'a', 'b', 'c')")
        finally:
            await conn.close()
        assert (await migrate(url))[0] == "up 0017_encrypt_personal_data"
    finally:
        await drop_database(url)
