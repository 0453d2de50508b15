"""Outgoing HTTP to provider gateways, behind a small port so adapters are testable offline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from checkout.payments.base import ProviderUnavailable

GATEWAY_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpTransport(Protocol):
    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> GatewayResponse: ...


class AiohttpTransport:
    """One client session per app, bounded in time and size; no redirects followed."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> GatewayResponse:
        try:
            async with self._session.request(
                method, url, headers=dict(headers), data=body or None, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=GATEWAY_TIMEOUT_S),
            ) as resp:
                data = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    raise ProviderUnavailable("gateway answer is too large")
                return GatewayResponse(resp.status, dict(resp.headers), data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"gateway unreachable ({type(exc).__name__})") from None
