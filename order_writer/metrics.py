"""Metrics of the order writer."""

from prometheus_client import Counter, Histogram

from mall.metrics import FAST_BUCKETS, LAG_BUCKETS

BATCH_ORDERS = Histogram(
    "mall_writer_batch_orders",
    "Orders per writer transaction.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "mall_writer_batch_duration_seconds",
    "Time to write one batch of orders to PostgreSQL, commit included.",
    buckets=FAST_BUCKETS,
)
ACCEPT_TO_PERSIST_SECONDS = Histogram(
    "mall_accept_to_persist_seconds",
    "Time from an order's acceptance in Redis to its commit in PostgreSQL.",
    buckets=LAG_BUCKETS,
)
PERSISTED = Counter(
    "mall_writer_orders_persisted_total",
    "Orders inserted by the writer (duplicates excluded).",
)
DUPLICATES = Counter(
    "mall_writer_orders_duplicate_total",
    "Orders received again and skipped because they were already persisted.",
)
RETRIED = Counter(
    "mall_writer_messages_retried_total",
    "Messages put back on the queue after a data error.",
)
DEAD_LETTERED = Counter(
    "mall_writer_messages_dead_lettered_total",
    "Messages moved to the dead-letter queue after too many failed attempts or a bad body.",
)
TRANSIENT_ERRORS = Counter(
    "mall_writer_transient_errors_total",
    "Batches that hit a connection or lock error and were retried with the messages held.",
)
