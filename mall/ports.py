"""Ports one feature package offers another, registered on the app by the package that owns
the data, so feature packages never import each other's internals."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web


class AddressBook(Protocol):
    async def get(self, user_id: str, address_id: int) -> dict[str, Any] | None:
        """The user's shipping address with that id, as a JSON-able dict; None if not theirs."""


ADDRESS_BOOK = web.AppKey("address_book", AddressBook)
