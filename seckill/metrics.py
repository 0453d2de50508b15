"""Metrics of the flash-sale core: admission and the outbox relay."""

from prometheus_client import Counter, Gauge, Histogram

from mall.metrics import FAST_BUCKETS

ADMISSIONS = Counter(
    "mall_admissions_total",
    "Flash-sale purchase attempts by result.",
    ["result"],
)
ADMISSION_SECONDS = Histogram(
    "mall_admission_duration_seconds",
    "Time to decide a flash-sale purchase, from body parsed to answer built.",
    buckets=FAST_BUCKETS,
)
SOLD_OUT_SHORTCUTS = Counter(
    "mall_admission_soldout_shortcut_total",
    "Purchase attempts answered sold out from the in-process flag, without Redis.",
)
OUTBOX_BACKLOG = Gauge(
    "mall_outbox_backlog",
    "Accepted orders in the outbox streams not yet confirmed by RabbitMQ.",
    multiprocess_mode="max",
)
RELAY_PUBLISHED = Counter(
    "mall_relay_orders_published_total",
    "Orders the relay published to RabbitMQ with a publisher confirm.",
)
RELAY_RECLAIMED = Counter(
    "mall_relay_orders_reclaimed_total",
    "Outbox entries taken over from a relay consumer that stopped answering.",
)
RELAY_FAILURES = Counter(
    "mall_relay_publish_failures_total",
    "Publish attempts that got no confirm; the entries stay pending and are retried.",
)
