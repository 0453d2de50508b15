"""Metrics of the audit log (labels are bounded: the four entry kinds)."""

from prometheus_client import Counter

ENTRIES = Counter(
    "mall_audit_entries_total",
    "Audit entries written by the serving processes, by kind.",
    ["kind"],
)
WRITE_FAILURES = Counter(
    "mall_audit_write_failures_total",
    "Audit entries that could not be written to PostgreSQL (the request was still answered "
    "and the entry was logged instead), by kind.",
    ["kind"],
)
