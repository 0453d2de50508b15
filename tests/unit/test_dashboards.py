"""Every metric a Grafana panel queries is one the mall exports (no dashboard silently blank)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import order_writer.metrics  # noqa: F401 - registers the writer's metrics
import seckill.metrics  # noqa: F401 - registers the admission and relay metrics

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported_names() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(metric.name + s for s in SUFFIXES)
    return names


def test_dashboard_queries_use_exported_metrics() -> None:
    exported = exported_names()
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files
    for path in files:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"\bmall_[a-z_]+", target["expr"]):
                    assert name in exported, f"{path.name}: {panel['title']}: {name}"
