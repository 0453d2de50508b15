"""Sealing personal data: round trips, tampering refused, key rings, blind indexes."""

from __future__ import annotations

import base64
import os

import pytest

from mall.crypto import (
    ORDER_ADDRESS,
    USERS_PHONE,
    DataCipher,
    UnreadableData,
    open_order_address,
    parse_keyring,
    seal_order_address,
    uses_development_key,
)
from mall.settings import DEV_DATA_KEY, Settings


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


KEY = new_key()


def test_round_trip_text_bytes_and_json() -> None:
    cipher = DataCipher(KEY)
    token = cipher.seal_text("+8613912345678", USERS_PHONE, "u1")
    assert b"13912345678" not in token
    assert cipher.open_text(token, USERS_PHONE, "u1") == "+8613912345678"
    assert cipher.open(cipher.seal(b"", "x"), "x") == b""
    value = {"recipient": "王小明", "line": "文三路 90 号", "n": [1, 2]}
    text = cipher.seal_json(value, ORDER_ADDRESS, "o1")
    assert "王" not in text and cipher.open_json(text, ORDER_ADDRESS, "o1") == value


def test_every_seal_uses_a_fresh_nonce() -> None:
    cipher = DataCipher(KEY)
    tokens = {cipher.seal_text("same", "p", "c") for _ in range(50)}
    assert len(tokens) == 50


@pytest.mark.parametrize("position", [0, 1, 2, 13, 14, -1])
def test_a_flipped_byte_is_refused(position: int) -> None:
    cipher = DataCipher(KEY)
    token = bytearray(cipher.seal_text("+8613912345678", USERS_PHONE, "u1"))
    token[position] ^= 0x01
    with pytest.raises(UnreadableData):
        cipher.open(bytes(token), USERS_PHONE, "u1")


def test_a_truncated_value_is_refused() -> None:
    cipher = DataCipher(KEY)
    token = cipher.seal_text("x", USERS_PHONE, "u1")
    for cut in (0, 2, 14, len(token) - 1):
        with pytest.raises(UnreadableData):
            cipher.open(token[:cut], USERS_PHONE, "u1")


def test_another_purpose_or_row_is_refused() -> None:
    cipher = DataCipher(KEY)
    token = cipher.seal_text("+8613912345678", USERS_PHONE, "u1")
    with pytest.raises(UnreadableData):
        cipher.open(token, "addresses.phone", "u1")  # moved to another column
    with pytest.raises(UnreadableData):
        cipher.open(token, USERS_PHONE, "u2")  # moved to another user's row
    sealed = seal_order_address(cipher, "o1", {"recipient": "A", "province": "P"})
    with pytest.raises(UnreadableData):
        open_order_address(cipher, "o2", sealed)  # another order


def test_another_key_is_refused_and_the_error_holds_no_secret() -> None:
    token = DataCipher(KEY).seal_text("+8613912345678", USERS_PHONE, "u1")
    other = new_key()
    with pytest.raises(UnreadableData) as caught:
        DataCipher(other).open(token, USERS_PHONE, "u1")
    message = str(caught.value)
    assert KEY not in message and other not in message and "8613912345678" not in message
    # Same id, other key material: the tag does not verify.
    with pytest.raises(UnreadableData):
        DataCipher(f"1:{other}").open(token, USERS_PHONE, "u1")


def test_key_rotation_new_key_seals_old_key_still_opens() -> None:
    old, new = new_key(), new_key()
    before = DataCipher(f"1:{old}")
    token = before.seal_text("+8613912345678", USERS_PHONE, "u1")
    after = DataCipher(f"2:{new},1:{old}")
    assert after.current_key_id == 2 and not after.is_current(token)
    assert after.open_text(token, USERS_PHONE, "u1") == "+8613912345678"
    fresh = after.seal_text("+8613912345678", USERS_PHONE, "u1")
    assert fresh[1] == 2 and after.is_current(fresh)
    with pytest.raises(UnreadableData):
        before.open(fresh, USERS_PHONE, "u1")
    with pytest.raises(UnreadableData):
        DataCipher(f"2:{new}").open(token, USERS_PHONE, "u1")  # the old key was dropped
    # The blind index stays put while the sealing key changes (it uses the lowest key id).
    assert before.blind_index("+8613912345678", USERS_PHONE) == \
        after.blind_index("+8613912345678", USERS_PHONE)


def test_blind_index_equal_for_equal_values_only() -> None:
    cipher = DataCipher(KEY)
    a = cipher.blind_index("+8613912345678", USERS_PHONE)
    assert len(a) == 32 and a == cipher.blind_index("+8613912345678", USERS_PHONE)
    assert a != cipher.blind_index("+8613912345679", USERS_PHONE)
    assert a != cipher.blind_index("+8613912345678", "addresses.phone")
    assert a != DataCipher(new_key()).blind_index("+8613912345678", USERS_PHONE)
    # Keyed: not the plain SHA-256 anyone could compute from a guessed number.
    import hashlib
    assert a != hashlib.sha256(b"+8613912345678").digest()


def test_blind_index_key_is_not_the_encryption_key() -> None:
    cipher = DataCipher(KEY)
    raw = base64.urlsafe_b64decode(KEY)
    assert cipher._index_key != raw  # derived, never the configured key itself


@pytest.mark.parametrize("bad", [
    "", "abc", base64.urlsafe_b64encode(os.urandom(16)).decode(),
    base64.urlsafe_b64encode(os.urandom(33)).decode(), "!!!not base64!!!",
    f"0:{KEY}", f"256:{KEY}", f"1:{KEY},1:{new_key()}", f"{KEY},{new_key()}",
])
def test_settings_refuse_a_bad_data_key_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings(data_key=bad).validate()
    assert "MALL_DATA_KEY" in str(caught.value)
    if len(bad) > 4:
        assert bad not in str(caught.value)
        assert KEY not in str(caught.value)


def test_settings_accept_one_key_or_a_ring() -> None:
    Settings(data_key=KEY).validate()
    Settings(data_key=f"3:{new_key()}, 1:{KEY}").validate()
    assert list(parse_keyring(f"3:{new_key()},1:{KEY}")) == [3, 1]


def test_development_key_is_recognised_and_repr_shows_no_key() -> None:
    assert uses_development_key(Settings())
    assert not uses_development_key(Settings(data_key=KEY))
    assert not uses_development_key(Settings(data_key=f"2:{KEY},1:{DEV_DATA_KEY}"))
    assert KEY not in repr(DataCipher(KEY))


def test_order_address_keeps_the_region_readable_and_seals_the_rest() -> None:
    cipher = DataCipher(KEY)
    address = {"recipient": "张三", "phone": "+8613800138000", "province": "上海",
               "city": "上海", "district": "", "line": "人民路 1 号", "postal_code": "200000"}
    carried = seal_order_address(cipher, "o-1", address)
    assert set(carried) == {"province", "city", "district", "sealed"}
    text = str(carried)
    for secret in ("张三", "13800138000", "人民路", "200000"):
        assert secret not in text
    assert open_order_address(cipher, "o-1", carried) == address
    legacy = {"recipient": "x", "line": "y"}
    assert open_order_address(cipher, "o-1", legacy) == legacy
    assert open_order_address(cipher, "o-1", None) is None
