"""The providers a deployment offers, built from its configuration."""

from __future__ import annotations

from checkout.payments.alipay import AlipayProvider
from checkout.payments.bank_transfer import BankTransferProvider
from checkout.payments.base import PaymentProvider
from checkout.payments.cod import CashOnDeliveryProvider
from checkout.payments.config import PaymentsConfig, sandbox_secret
from checkout.payments.sandbox import SandboxProvider
from checkout.payments.transport import HttpTransport
from checkout.payments.wechat import WechatPayProvider

PROVIDER_NAMES = ("sandbox", "cod", "bank_transfer", "alipay", "wechat")


def build_providers(config: PaymentsConfig, jwt_secret: str,
                    transport: HttpTransport) -> dict[str, PaymentProvider]:
    providers: list[PaymentProvider] = []
    if config.sandbox_enabled:
        providers.append(SandboxProvider(sandbox_secret(jwt_secret)))
    if config.cod_enabled:
        providers.append(CashOnDeliveryProvider())
    if config.bank is not None:
        providers.append(BankTransferProvider(config.bank))
    if config.alipay is not None:
        providers.append(AlipayProvider(config.alipay, transport))
    if config.wechat is not None:
        providers.append(WechatPayProvider(config.wechat, transport))
    return {p.info.name: p for p in providers}
