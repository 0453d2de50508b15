"""Metrics of payments (labels are bounded: provider names and outcome codes)."""

from prometheus_client import Counter

CALLBACKS = Counter(
    "mall_payment_callbacks_total",
    "Provider callbacks received, by provider and outcome (replays counted as `replayed`).",
    ["provider", "outcome"],
)
REFUNDS = Counter(
    "mall_payment_refunds_total",
    "Refunds handed to payments, by provider and result (completed, manual, failed).",
    ["provider", "result"],
)
