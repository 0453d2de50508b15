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
ORDERS_QUEUE_DEPTH = Gauge(
    "mall_orders_queue_depth",
    "Messages (each several orders) waiting in RabbitMQ for the writer.",
    multiprocess_mode="mostrecent",
)
SALE_REMAINING = Gauge(
    "mall_flash_sale_remaining_units",
    "Units of a live flash sale still sellable in Redis.",
    ["sale_id"],
    multiprocess_mode="mostrecent",
)
SALE_ACCEPTED = Gauge(
    "mall_flash_sale_accepted_units",
    "Units of a live flash sale accepted in Redis (initial stock minus remaining).",
    ["sale_id"],
    multiprocess_mode="mostrecent",
)
SALE_PERSISTED = Gauge(
    "mall_flash_sale_persisted_units",
    "Units of a live flash sale sold in PostgreSQL; accepted minus persisted is in flight "
    "and must settle to zero.",
    ["sale_id"],
    multiprocess_mode="mostrecent",
)
