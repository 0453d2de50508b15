"""Query parameters shared by the reports: the period, its granularity, list sizes, format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from mall.errors import invalid
from mall.params import query_int

REPORT_TZ: Final = ZoneInfo("Asia/Shanghai")
REPORT_TZ_NAME: Final = "Asia/Shanghai"
DEFAULT_DAYS: Final = 30
MAX_SPAN: Final = timedelta(days=731)  # two years, a leap day included
GRANULARITIES: Final = ("day", "week", "month", "all")
FORMATS: Final = ("json", "csv")
PERIOD_DOCS: Final = {
    "from": "start, inclusive: YYYY-MM-DD (midnight Asia/Shanghai) or ISO 8601 with offset;"
            " default 30 days before `to`",
    "to": "end: YYYY-MM-DD (that whole day included) or ISO 8601 with offset (exclusive);"
          " default now; at most 2 years after `from`",
    "format": "json (default) or csv",
}


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    def view(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _instant(raw: str, name: str, is_end: bool) -> datetime:
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise invalid(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"
                          " with an offset") from None
        if is_end:
            day += timedelta(days=1)
        return datetime.combine(day, time(), REPORT_TZ)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"
                      " with an offset") from None
    if value.tzinfo is None:
        raise invalid(f"{name} must carry a UTC offset")
    return value


def parse_period(query: Any) -> Period:
    raw_from, raw_to = query.get("from"), query.get("to")
    end = _instant(raw_to, "to", True) if raw_to else datetime.now(UTC)
    start = _instant(raw_from, "from", False) if raw_from else end - timedelta(days=DEFAULT_DAYS)
    if start > end:
        raise invalid("from must not be after to")
    if end - start > MAX_SPAN:
        raise invalid("the period must not be longer than 2 years")
    return Period(start, end)


def parse_choice(query: Any, name: str, choices: tuple[str, ...],
                 default: str | None) -> str | None:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}")
    return str(raw)


def parse_int(query: Any, name: str, default: int, low: int, high: int) -> int:
    value = query_int(query.get(name), name, low, high)
    return default if value is None else value


def parse_optional_id(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    return parse_int(query, name, 0, 1, 2**62)
