"""Personal data at rest: authenticated encryption of small values and blind indexes.

Sealed value (bytes, stored as bytea, or URL-safe base64 inside JSON):

    format (1 byte, 0x01) | key id (1 byte) | nonce (12 random bytes) | AES-256-GCM output

The associated data is the format and key id bytes, the purpose (`users.phone`, ...) and a
context naming the row (a user id, an order id): a ciphertext copied to another column or
another row, or sealed under another key, does not open.

`MALL_DATA_KEY` is one key (URL-safe base64 of 32 bytes, key id 1) or a key ring
`id:key,id:key,...` (ids 1-255): the first key seals, every listed key opens what it sealed, so
a key is rotated by putting a new one first, re-sealing (`mall.crypto_backfill.backfill`) and
then dropping the old one. The encryption key and the blind-index key are derived from the
configured keys with HKDF-SHA256 under different labels, so neither is the raw key and one
never reveals the other. Blind indexes (HMAC-SHA256) use the ring's lowest key id, so they stay
stable while the sealing key changes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging
import os
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from mall.settings import Settings

log = logging.getLogger(__name__)

FORMAT_V1: Final = 0x01
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
HEADER_BYTES: Final = 2
_ENCRYPTION_LABEL: Final = b"flashmall data at rest: aes-256-gcm v1"
_INDEX_LABEL: Final = b"flashmall data at rest: blind index hmac-sha256 v1"

# Purposes: where a sealed value lives. A value sealed for one purpose opens for no other.
USERS_PHONE: Final = "users.phone"
ADDRESS_RECIPIENT: Final = "addresses.recipient"
ADDRESS_PHONE: Final = "addresses.phone"
ADDRESS_LINE: Final = "addresses.line"
ADDRESS_POSTAL_CODE: Final = "addresses.postal_code"
ORDER_ADDRESS: Final = "orders.address"
# The sealed columns of a saved address (`<name>_enc`) and the purpose of each.
ADDRESS_FIELD_PURPOSES: Final = {"recipient": ADDRESS_RECIPIENT, "phone": ADDRESS_PHONE,
                                 "line": ADDRESS_LINE, "postal_code": ADDRESS_POSTAL_CODE}


class UnreadableData(Exception):
    """A sealed value that does not open: tampered with, moved, or sealed under another key.

    The message names the purpose only, never the value or a key."""


def parse_keyring(raw: str) -> dict[int, bytes]:
    """The keys of MALL_DATA_KEY by id, in the order given (the first one seals).

    Raises ValueError with a message that never contains key material."""
    ring: dict[int, bytes] = {}
    entries = [entry.strip() for entry in raw.split(",")]
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.rpartition(":")
        if not sep:
            if len(entries) > 1:
                raise ValueError("each key of a key ring must be written id:key")
            key_id, encoded = "1", entry
        if not (key_id.isascii() and key_id.isdigit()) or not 1 <= int(key_id) <= 255:
            raise ValueError(f"key {position}: the key id must be a number from 1 to 255")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"key {position} is not URL-safe base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {position} must decode to {KEY_BYTES} bytes")
        if int(key_id) in ring:
            raise ValueError(f"key {position}: key id {key_id} is listed twice")
        ring[int(key_id)] = key
    return ring


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(key)


def _aad(header: bytes, purpose: str, context: str) -> bytes:
    return header + purpose.encode() + b"\x00" + context.encode()


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: int
    aead: AESGCM


class DataCipher:
    """Seals and opens personal data; computes blind indexes for equality look-ups."""

    def __init__(self, data_key: str) -> None:
        ring = parse_keyring(data_key)
        self._keys = {key_id: _Key(key_id, AESGCM(_derive(key, _ENCRYPTION_LABEL)))
                      for key_id, key in ring.items()}
        self._current = self._keys[next(iter(ring))]
        self._index_key = _derive(ring[min(ring)], _INDEX_LABEL)

    def __repr__(self) -> str:  # never the keys
        return f"DataCipher(current_key_id={self._current.key_id}, key_ids={sorted(self._keys)})"

    @property
    def current_key_id(self) -> int:
        return self._current.key_id

    def seal(self, plaintext: bytes, purpose: str, context: str = "") -> bytes:
        header = bytes((FORMAT_V1, self._current.key_id))
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.aead.encrypt(nonce, plaintext, _aad(header, purpose, context))
        return header + nonce + sealed

    def open(self, token: bytes, purpose: str, context: str = "") -> bytes:
        if len(token) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES or token[0] != FORMAT_V1:
            raise UnreadableData(f"{purpose}: not a sealed value")
        key = self._keys.get(token[1])
        if key is None:
            raise UnreadableData(f"{purpose}: sealed under key id {token[1]}, not in the ring")
        header, nonce = token[:HEADER_BYTES], token[HEADER_BYTES:HEADER_BYTES + NONCE_BYTES]
        try:
            return key.aead.decrypt(nonce, token[HEADER_BYTES + NONCE_BYTES:],
                                    _aad(header, purpose, context))
        except InvalidTag:
            raise UnreadableData(f"{purpose}: the sealed value does not open") from None

    def is_current(self, token: bytes) -> bool:
        """Whether the value was sealed with the current key (False: re-seal it)."""
        return len(token) > 1 and token[1] == self._current.key_id

    def seal_text(self, text: str, purpose: str, context: str = "") -> bytes:
        return self.seal(text.encode(), purpose, context)

    def open_text(self, token: bytes, purpose: str, context: str = "") -> str:
        return self.open(token, purpose, context).decode()

    def seal_json(self, value: Any, purpose: str, context: str = "") -> str:
        """URL-safe base64 text, to carry a sealed value inside JSON."""
        token = self.seal(orjson.dumps(value), purpose, context)
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def open_json(self, text: str, purpose: str, context: str = "") -> Any:
        try:
            token = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise UnreadableData(f"{purpose}: not a sealed value") from None
        return orjson.loads(self.open(token, purpose, context))

    def blind_index(self, value: str, purpose: str) -> bytes:
        """HMAC-SHA256 of the (already normalised) value: equal values, equal indexes."""
        return hmac.new(self._index_key, purpose.encode() + b"\x00" + value.encode(),
                        sha256).digest()


@functools.lru_cache(maxsize=8)
def _cipher_for(data_key: str) -> DataCipher:
    return DataCipher(data_key)


def data_cipher(settings: Settings) -> DataCipher:
    """The cipher of these settings' MALL_DATA_KEY (built once per key)."""
    return _cipher_for(settings.data_key)


def uses_development_key(settings: Settings) -> bool:
    from mall.settings import DEV_DATA_KEY

    sealing_key = next(iter(parse_keyring(settings.data_key).values()))
    return sealing_key == parse_keyring(DEV_DATA_KEY)[1]


def warn_if_development_key(settings: Settings) -> None:
    if uses_development_key(settings):
        log.warning("MALL_DATA_KEY is not set: personal data is sealed with the development key")


# -- the shipping address carried by an order ----------------------------------------------------

# Province, city and district stay readable (reports by region); the rest travels sealed.
ORDER_REGION_FIELDS: Final = ("province", "city", "district")


def seal_order_address(cipher: DataCipher, order_id: str,
                       address: dict[str, Any]) -> dict[str, Any]:
    """The address as an order carries it through Redis, RabbitMQ and orders.address."""
    sealed: dict[str, Any] = {name: address[name] for name in ORDER_REGION_FIELDS
                              if address.get(name) is not None}
    sealed["sealed"] = cipher.seal_json(address, ORDER_ADDRESS, order_id)
    return sealed


def open_order_address(cipher: DataCipher, order_id: str,
                       carried: dict[str, Any] | None) -> dict[str, Any] | None:
    """The full address of an order; an address written before sealing began is as stored."""
    if carried is None or "sealed" not in carried:
        return carried
    opened = cipher.open_json(carried["sealed"], ORDER_ADDRESS, order_id)
    return opened if isinstance(opened, dict) else None
