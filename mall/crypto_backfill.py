"""Sealing personal data written before encryption at rest, and re-sealing after a key change.

SQL cannot do this (the key never reaches the database), so it runs here, after the SQL
migrations. Each batch is one transaction that locks its rows, seals the plaintext columns,
clears them, and re-seals values sealed under a key that is no longer the current one. Running
it again does nothing more, so it is safe to repeat (after a key rotation, or to catch orders
that were still on their way through the queue in the old shape when it first ran).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson

from mall.crypto import (
    ADDRESS_FIELD_PURPOSES,
    USERS_PHONE,
    DataCipher,
    data_cipher,
    open_order_address,
    seal_order_address,
)
from mall.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500

SELECT_USERS = """
SELECT user_id, phone, phone_enc FROM users
WHERE user_id > $1 AND (phone IS NOT NULL OR get_byte(phone_enc, 1) <> $2)
ORDER BY user_id LIMIT $3 FOR UPDATE
"""
UPDATE_USER = "UPDATE users SET phone = NULL, phone_hash = $2, phone_enc = $3 WHERE user_id = $1"

SELECT_ADDRESSES = """
SELECT id, user_id, recipient, phone, line, postal_code,
       recipient_enc, phone_enc, line_enc, postal_code_enc
FROM addresses
WHERE id > $1 AND (recipient IS NOT NULL OR phone IS NOT NULL OR line IS NOT NULL
                   OR postal_code IS NOT NULL OR get_byte(recipient_enc, 1) <> $2
                   OR get_byte(phone_enc, 1) <> $2 OR get_byte(line_enc, 1) <> $2
                   OR get_byte(postal_code_enc, 1) <> $2)
ORDER BY id LIMIT $3 FOR UPDATE
"""
UPDATE_ADDRESS = """
UPDATE addresses SET recipient = NULL, phone = NULL, line = NULL, postal_code = NULL,
                     recipient_enc = $2, phone_enc = $3, line_enc = $4, postal_code_enc = $5
WHERE id = $1
"""

# Orders whose address is still readable (written before sealing began).
SELECT_ORDERS = """
SELECT order_id, address FROM orders
WHERE order_id > $1 AND address IS NOT NULL AND jsonb_typeof(address) = 'object'
  AND NOT address ? 'sealed'
ORDER BY order_id LIMIT $2 FOR UPDATE
"""
UPDATE_ORDER_ADDRESS = "UPDATE orders SET address = $2::jsonb WHERE order_id = $1"


async def backfill(dsn: str, settings: Settings) -> dict[str, int]:
    """Seal what is still plaintext and re-seal what an older key sealed. The rows changed,
    per table."""
    cipher = data_cipher(settings)
    conn = await asyncpg.connect(dsn)
    try:
        done = {
            "users": await _users(conn, cipher),
            "addresses": await _addresses(conn, cipher),
            "orders": await _orders(conn, cipher),
        }
    finally:
        await conn.close()
    log.info("personal data sealed: %d users, %d addresses, %d orders",
             done["users"], done["addresses"], done["orders"])
    return done


async def _users(conn: asyncpg.Connection, cipher: DataCipher) -> int:
    changed, after = 0, ""
    while True:
        async with conn.transaction():
            rows = await conn.fetch(SELECT_USERS, after, cipher.current_key_id, BATCH)
            updates = []
            for row in rows:
                phone = row["phone"]
                if row["phone_enc"] is not None:  # written sealed: that value is the newer one
                    phone = cipher.open_text(row["phone_enc"], USERS_PHONE, row["user_id"])
                updates.append((row["user_id"], cipher.blind_index(phone, USERS_PHONE),
                                cipher.seal_text(phone, USERS_PHONE, row["user_id"])))
            await conn.executemany(UPDATE_USER, updates)
        changed += len(rows)
        if len(rows) < BATCH:
            return changed
        after = rows[-1]["user_id"]


async def _addresses(conn: asyncpg.Connection, cipher: DataCipher) -> int:
    changed, after = 0, 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(SELECT_ADDRESSES, after, cipher.current_key_id, BATCH)
            updates = []
            for row in rows:
                sealed = []
                for name, purpose in ADDRESS_FIELD_PURPOSES.items():
                    value = row[name]
                    if row[f"{name}_enc"] is not None:
                        value = cipher.open_text(row[f"{name}_enc"], purpose, row["user_id"])
                    sealed.append(None if value is None
                                  else cipher.seal_text(value, purpose, row["user_id"]))
                updates.append((row["id"], *sealed))
            await conn.executemany(UPDATE_ADDRESS, updates)
        changed += len(rows)
        if len(rows) < BATCH:
            return changed
        after = rows[-1]["id"]


async def _orders(conn: asyncpg.Connection, cipher: DataCipher) -> int:
    changed, after = 0, ""
    while True:
        async with conn.transaction():
            rows = await conn.fetch(SELECT_ORDERS, after, BATCH)
            updates = []
            for row in rows:
                address: Any = orjson.loads(row["address"])
                address = open_order_address(cipher, row["order_id"], address)
                sealed = seal_order_address(cipher, row["order_id"], address)
                updates.append((row["order_id"], orjson.dumps(sealed).decode()))
            await conn.executemany(UPDATE_ORDER_ADDRESS, updates)
        changed += len(rows)
        if len(rows) < BATCH:
            return changed
        after = rows[-1]["order_id"]
