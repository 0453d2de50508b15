"""Shipping addresses, always looked up by (id, user_id): another user's address is not found.

Every change takes the owner's row lock first, so the address limit and the one-default rule
hold under concurrent requests; the partial unique index `addresses_one_default` backs the rule.

Recipient, phone, line and postal code are stored sealed (mall/crypto.py), bound to the owner's
user id; province, city and district stay readable for reports by region.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import asyncpg
import msgspec

from accounts.identity import normalize_phone
from accounts.models import AddressBody, AddressPatch
from mall.crypto import ADDRESS_FIELD_PURPOSES, DataCipher
from mall.errors import ApiError, not_found

MAX_ADDRESSES = 20
COLUMNS = ("id, recipient_enc, phone_enc, province, city, district, line_enc, postal_code_enc, "
           "is_default, created_at, updated_at")
EDITABLE = ("recipient", "phone", "province", "city", "district", "line", "postal_code")
SEALED = ADDRESS_FIELD_PURPOSES
VIEW_FIELDS = ("id", "recipient", "phone", "province", "city", "district", "line", "postal_code",
               "is_default")

LOCK_OWNER = "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE"
COUNT = "SELECT count(*) FROM addresses WHERE user_id = $1"
LIST = f"SELECT {COLUMNS} FROM addresses WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
SELECT_ONE = f"SELECT {COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"
OWNS = "SELECT 1 FROM addresses WHERE id = $1 AND user_id = $2"
INSERT = f"""
INSERT INTO addresses (user_id, recipient_enc, phone_enc, province, city, district, line_enc,
                       postal_code_enc, is_default)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING {COLUMNS}
"""
# $3..$9: whether each editable field was sent; $10..$16: its new value.
UPDATE = f"""
UPDATE addresses SET
    recipient_enc   = CASE WHEN $3 THEN $10 ELSE recipient_enc END,
    phone_enc       = CASE WHEN $4 THEN $11 ELSE phone_enc END,
    province        = CASE WHEN $5 THEN $12 ELSE province END,
    city            = CASE WHEN $6 THEN $13 ELSE city END,
    district        = CASE WHEN $7 THEN $14 ELSE district END,
    line_enc        = CASE WHEN $8 THEN $15 ELSE line_enc END,
    postal_code_enc = CASE WHEN $9 THEN $16 ELSE postal_code_enc END,
    updated_at  = now()
WHERE id = $1 AND user_id = $2
RETURNING {COLUMNS}
"""
DELETE = "DELETE FROM addresses WHERE id = $1 AND user_id = $2 RETURNING is_default"
CLEAR_DEFAULT = """
UPDATE addresses SET is_default = false, updated_at = now()
WHERE user_id = $1 AND is_default AND id <> $2
"""
MAKE_DEFAULT = f"""
UPDATE addresses SET is_default = true, updated_at = now()
WHERE id = $1 AND user_id = $2
RETURNING {COLUMNS}
"""
PROMOTE_NEWEST = """
UPDATE addresses SET is_default = true, updated_at = now()
WHERE id = (SELECT id FROM addresses WHERE user_id = $1 ORDER BY created_at DESC, id DESC
            LIMIT 1)
"""


def seal_field(cipher: DataCipher, user_id: str, name: str, value: str | None) -> bytes | None:
    return None if value is None else cipher.seal_text(value, SEALED[name], user_id)


def address_view(row: asyncpg.Record, cipher: DataCipher, user_id: str) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name in VIEW_FIELDS:
        if name in SEALED:
            sealed = row[f"{name}_enc"]
            view[name] = None if sealed is None else cipher.open_text(sealed, SEALED[name],
                                                                      user_id)
        else:
            view[name] = row[name]
    view["created_at"] = row["created_at"].astimezone(UTC).isoformat()
    view["updated_at"] = row["updated_at"].astimezone(UTC).isoformat()
    return view


async def _lock_owner(conn: asyncpg.Connection, user_id: str) -> None:
    if await conn.fetchval(LOCK_OWNER, user_id) is None:
        raise not_found("account")


async def list_addresses(pool: asyncpg.Pool, cipher: DataCipher,
                         user_id: str) -> list[dict[str, Any]]:
    return [address_view(r, cipher, user_id) for r in await pool.fetch(LIST, user_id)]


async def get_address(pool: asyncpg.Pool, cipher: DataCipher, user_id: str,
                      address_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(SELECT_ONE, address_id, user_id)
    if row is None:
        raise not_found("address")
    return address_view(row, cipher, user_id)


async def create_address(pool: asyncpg.Pool, cipher: DataCipher, user_id: str,
                         body: AddressBody) -> dict[str, Any]:
    phone = normalize_phone(body.phone)
    sealed = {name: seal_field(cipher, user_id, name, value) for name, value in (
        ("recipient", body.recipient), ("phone", phone), ("line", body.line),
        ("postal_code", body.postal_code))}
    async with pool.acquire() as conn, conn.transaction():
        await _lock_owner(conn, user_id)
        count = await conn.fetchval(COUNT, user_id)
        if count >= MAX_ADDRESSES:
            raise ApiError(409, "address_limit_reached",
                           f"an account may keep at most {MAX_ADDRESSES} addresses")
        is_default = body.is_default or count == 0
        if is_default:
            await conn.execute(CLEAR_DEFAULT, user_id, 0)
        row = await conn.fetchrow(INSERT, user_id, sealed["recipient"], sealed["phone"],
                                  body.province, body.city, body.district, sealed["line"],
                                  sealed["postal_code"], is_default)
    return address_view(row, cipher, user_id)


async def update_address(pool: asyncpg.Pool, cipher: DataCipher, user_id: str, address_id: int,
                         patch: AddressPatch) -> dict[str, Any]:
    values = {name: getattr(patch, name) for name in EDITABLE}
    if values["phone"] is not msgspec.UNSET:
        values["phone"] = normalize_phone(values["phone"])
    sent = [v is not msgspec.UNSET for v in values.values()]
    new = [None if v is msgspec.UNSET
           else seal_field(cipher, user_id, name, v) if name in SEALED else v
           for name, v in values.items()]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(UPDATE, address_id, user_id, *sent, *new)
    if row is None:
        raise not_found("address")
    return address_view(row, cipher, user_id)


async def delete_address(pool: asyncpg.Pool, user_id: str, address_id: int) -> None:
    """Delete; when it was the default, the newest remaining address becomes the default."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_owner(conn, user_id)
        was_default = await conn.fetchval(DELETE, address_id, user_id)
        if was_default is None:
            raise not_found("address")
        if was_default:
            await conn.execute(PROMOTE_NEWEST, user_id)


async def make_default(pool: asyncpg.Pool, cipher: DataCipher, user_id: str,
                       address_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await _lock_owner(conn, user_id)
        if await conn.fetchval(OWNS, address_id, user_id) is None:
            raise not_found("address")
        await conn.execute(CLEAR_DEFAULT, user_id, address_id)
        row = await conn.fetchrow(MAKE_DEFAULT, address_id, user_id)
    return address_view(row, cipher, user_id)


class PgAddressBook:
    """The `mall.ports.AddressBook` other packages (checkout) use to read an address."""

    def __init__(self, pool: asyncpg.Pool, cipher: DataCipher) -> None:
        self._pool = pool
        self._cipher = cipher

    async def get(self, user_id: str, address_id: int) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(SELECT_ONE, address_id, user_id)
        return address_view(row, self._cipher, user_id) if row is not None else None
