"""Query-string integers are read the same way on every route."""

from __future__ import annotations

import pytest

from mall.errors import ApiError
from mall.params import MAX_ID, query_id_cursor, query_int, query_limit


@pytest.mark.parametrize("raw", ["0", "101", "-1", "1.5", "abc", "", "²", "١٢", " 5", "5 ",
                                 "9" * 40])
def test_bad_limits_are_422(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        query_limit(raw, 20, 100)
    assert (caught.value.status, caught.value.code) == (422, "invalid_request")


def test_limits_and_defaults() -> None:
    assert query_limit(None, 20, 100) == 20
    assert query_limit("1", 20, 100) == 1 and query_limit("100", 20, 100) == 100
    assert query_int(None, "n", 0, 5) is None and query_int("0", "n", 0, 5) == 0


@pytest.mark.parametrize("raw", ["0", "x", "²", "", str(MAX_ID + 1), "1" * 20])
def test_bad_cursors_are_422(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        query_id_cursor(raw)
    assert caught.value.status == 422


def test_cursors() -> None:
    assert query_id_cursor(None) is None and query_id_cursor("42") == 42
