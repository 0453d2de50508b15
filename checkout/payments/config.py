"""Provider settings read from `MALL_`-prefixed environment variables.

Kept apart from mall/settings.py because these are secrets and account numbers only a
deployment that takes real money sets. A provider whose settings are missing is not offered.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mall.settings import Settings

SANDBOX_SECRET_LABEL: Final = b"flashmall/payments/sandbox-callback/v1"
ALIPAY_GATEWAY: Final = "https://openapi.alipay.com/gateway.do"
WECHAT_API_BASE: Final = "https://api.mch.weixin.qq.com"


def _pem(raw: str | None) -> str | None:
    """PEM text as pasted into an environment variable: `\\n` escapes become newlines."""
    if not raw:
        return None
    return raw.replace("\\n", "\n").strip()


def sandbox_secret(jwt_secret: str) -> bytes:
    """The sandbox callback key, derived from the JWT secret under a fixed label."""
    return hmac.new(jwt_secret.encode(), SANDBOX_SECRET_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class AlipayConfig:
    app_id: str
    private_key_pem: str
    alipay_public_key_pem: str
    gateway: str = ALIPAY_GATEWAY


@dataclass(frozen=True, slots=True)
class WechatConfig:
    mch_id: str
    app_id: str
    api_v3_key: bytes
    private_key_pem: str
    cert_serial: str
    platform_public_key_pem: str
    platform_serial: str
    api_base: str = WECHAT_API_BASE


@dataclass(frozen=True, slots=True)
class BankAccount:
    payee: str
    account: str
    bank: str


# Shown only by a development deployment (the default JWT secret), so the flow can be tried.
DEV_BANK_ACCOUNT: Final = BankAccount("flashmall (development)", "6222 0000 0000 0000", "Dev Bank")


@dataclass(frozen=True, slots=True)
class PaymentsConfig:
    sandbox_enabled: bool
    public_url: str | None = None
    alipay: AlipayConfig | None = None
    wechat: WechatConfig | None = None
    bank: BankAccount | None = None
    cod_enabled: bool = True

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> PaymentsConfig:
        env = os.environ if env is None else env
        sandbox = env.get("MALL_PAYMENTS_SANDBOX", "").strip().lower()
        if sandbox not in {"", "on", "off", "true", "false", "1", "0"}:
            raise ValueError("MALL_PAYMENTS_SANDBOX must be on or off")
        return cls(
            # A sandbox marks orders paid without money: on by default only with the dev secret.
            sandbox_enabled=sandbox in {"on", "true", "1"} or (sandbox == ""
                                                               and settings.uses_dev_secret),
            public_url=(env.get("MALL_PAYMENTS_PUBLIC_URL") or "").rstrip("/") or None,
            alipay=_alipay(env),
            wechat=_wechat(env),
            bank=_bank(env) or (DEV_BANK_ACCOUNT if settings.uses_dev_secret else None),
            cod_enabled=env.get("MALL_PAYMENTS_COD", "on").strip().lower() not in {"off", "0",
                                                                                   "false"},
        )


def _alipay(env: Mapping[str, str]) -> AlipayConfig | None:
    app_id = env.get("MALL_ALIPAY_APP_ID")
    private = _pem(env.get("MALL_ALIPAY_PRIVATE_KEY"))
    public = _pem(env.get("MALL_ALIPAY_PUBLIC_KEY"))
    if not (app_id and private and public):
        return None
    return AlipayConfig(app_id, private, public, env.get("MALL_ALIPAY_GATEWAY") or ALIPAY_GATEWAY)


def _wechat(env: Mapping[str, str]) -> WechatConfig | None:
    names = ("MCH_ID", "APP_ID", "API_V3_KEY", "PRIVATE_KEY", "CERT_SERIAL",
             "PLATFORM_PUBLIC_KEY", "PLATFORM_SERIAL")
    values = {n: env.get(f"MALL_WECHAT_{n}") or "" for n in names}
    if not all(values.values()):
        return None
    key = values["API_V3_KEY"].encode()
    if len(key) != 32:
        raise ValueError("MALL_WECHAT_API_V3_KEY must be 32 characters")
    return WechatConfig(
        mch_id=values["MCH_ID"], app_id=values["APP_ID"], api_v3_key=key,
        private_key_pem=_pem(values["PRIVATE_KEY"]) or "", cert_serial=values["CERT_SERIAL"],
        platform_public_key_pem=_pem(values["PLATFORM_PUBLIC_KEY"]) or "",
        platform_serial=values["PLATFORM_SERIAL"],
        api_base=(env.get("MALL_WECHAT_API_BASE") or WECHAT_API_BASE).rstrip("/"),
    )


def _bank(env: Mapping[str, str]) -> BankAccount | None:
    payee, account = env.get("MALL_BANK_TRANSFER_PAYEE"), env.get("MALL_BANK_TRANSFER_ACCOUNT")
    bank = env.get("MALL_BANK_TRANSFER_BANK")
    if not (payee and account and bank):
        return None
    return BankAccount(payee, account, bank)
