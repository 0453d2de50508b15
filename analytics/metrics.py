"""Metrics of the event sink."""

from prometheus_client import Counter

EVENTS_DROPPED = Counter(
    "mall_analytics_events_dropped_total",
    "Behaviour events dropped, by reason (buffer_full, invalid, write_failed,"
    " shut_down).",
    ["reason"],
)
EVENTS_WRITTEN = Counter(
    "mall_analytics_events_written_total",
    "Behaviour events copied to PostgreSQL.",
)
FLUSH_FAILURES = Counter(
    "mall_analytics_flush_failures_total",
    "Failed attempts to copy a batch of events to PostgreSQL.",
)
