"""Settings read from `MALL_`-prefixed environment variables, with working local defaults."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mall.crypto import parse_keyring

log = logging.getLogger(__name__)

DEV_JWT_SECRET = "flashmall-dev-secret-change-me-in-production"
# 32 bytes, URL-safe base64: the development key for personal data at rest (a warning is logged)
DEV_DATA_KEY = "Zmxhc2htYWxsLWRldi1kYXRhLWtleS0zMi1ieXRlcyE="
_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced, safe to log."""
    parts = urlsplit(dsn)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    if parts.query:  # libpq also takes ?password=...
        parts = parts._replace(query=_QUERY_PASSWORD.sub(r"\1***", parts.query))
    return urlunsplit(parts)


@dataclass(frozen=True, slots=True)
class Settings:
    # DSNs and secrets are left out of repr(): settings may be logged or shown in a traceback.
    database_url: str = field(default="postgresql://postgres@127.0.0.1:5432/mall", repr=False)
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    amqp_url: str = field(default="amqp://guest:guest@127.0.0.1:5672/", repr=False)
    jwt_secret: str = field(default=DEV_JWT_SECRET, repr=False)
    namespace: str = "mall"
    log_level: str = "INFO"
    # Longest request body accepted, in bytes; larger answers 413.
    max_body_bytes: int = 64 * 1024
    # How long the "queued" view of an accepted order and an idempotency record live in Redis.
    order_view_ttl_s: int = 86_400
    # Outbox relay: entries read per stream per poll, idle pause, and how long an entry may sit
    # with a consumer that stopped answering before another relay takes it over.
    relay_batch: int = 500
    relay_idle_ms: int = 5
    relay_claim_idle_ms: int = 30_000
    relay_enabled: bool = True
    # Writer: messages prefetched, orders per transaction, linger before a partial batch is
    # written, attempts on a message that fails with a data error before it is dead-lettered.
    writer_prefetch: int = 64
    writer_batch_orders: int = 2_000
    writer_linger_ms: int = 20
    writer_max_attempts: int = 5
    # Port of the writer's own /metrics and /livez (0: none).
    writer_metrics_port: int = 9101
    # Address of the writer's /metrics: loopback unless a scraper elsewhere must reach it.
    writer_metrics_host: str = "127.0.0.1"
    # Seconds between checks that clear in-process sold-out flags when stock comes back.
    soldout_refresh_s: float = 0.5
    redis_max_connections: int = 64
    pg_pool_max: int = 10
    # Accounts: lifetimes of access tokens, refresh tokens and one-time log-in codes; failed
    # log-ins allowed per account and per IP within the lock-out window before 429.
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 86_400
    otp_ttl_s: int = 300
    login_max_failures: int = 5
    login_ip_max_failures: int = 50
    login_lockout_s: int = 900
    # Catalog: lifetime of a cached product detail in Redis (changes invalidate it at once).
    product_cache_ttl_s: int = 300
    # Orders: an order not paid within this many seconds of acceptance is cancelled and its
    # stock returned; how often the serving processes look for such orders.
    payment_timeout_s: int = 900
    payment_sweep_s: float = 5.0
    # Recommendations: seconds between refreshes of co-purchase counts and best sellers (one
    # process at a time does the work, under a Redis lock).
    recs_refresh_s: float = 60.0
    # Key (32 bytes, URL-safe base64) that encrypts phone numbers and addresses at rest.
    data_key: str = field(default=DEV_DATA_KEY, repr=False)
    # How often one serving process compares Redis with PostgreSQL and exports the drift.
    drift_check_s: float = 10.0
    # Rate limits: requests per `rate_window_s` per user, per client IP, and per flash sale
    # (all users together); beyond them 429 with Retry-After.
    rate_window_s: float = 1.0
    rate_limit_user: int = 20
    rate_limit_ip: int = 200
    rate_limit_sale: int = 50_000
    # Lifetime of a flash sale's single-use admission token (anti-bot), seconds.
    admission_token_ttl_s: int = 120

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"MALL_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(
                "MALL_NAMESPACE must start with a lowercase letter and contain only "
                "lowercase letters, digits and '_' (at most 40 characters)"
            )
        if len(self.jwt_secret) < 32:
            raise ValueError("MALL_JWT_SECRET must be at least 32 characters")
        try:
            parse_keyring(self.data_key)
        except ValueError as exc:  # the message never holds key material
            raise ValueError(f"MALL_DATA_KEY: {exc}") from None

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def process_env(self, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
        """An environment for a child `mall` process that reads exactly these settings: the
        base environment (default: this process's) without its MALL_ variables and without a
        Prometheus multiprocess directory, these settings, then `extra`."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items()
               if not k.startswith("MALL_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        for f in fields(self):
            value = getattr(self, f.name)
            env[f"MALL_{f.name.upper()}"] = str(value).lower() if isinstance(value, bool) \
                else str(value)
        env.update(extra)
        return env

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET

    def describe(self) -> str:
        """One line for the logs, every DSN masked."""
        return (
            f"namespace={self.namespace} database={mask_dsn(self.database_url)} "
            f"redis={mask_dsn(self.redis_url)} amqp={mask_dsn(self.amqp_url)}"
        )


def _parse(name: str, raw: str, type_name: Any) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
    except ValueError:
        raise ValueError(f"MALL_{name.upper()}: cannot read {raw!r} as {type_name}") from None
    return raw
