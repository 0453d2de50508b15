"""Request bodies of the coupon routes and the rules a template must satisfy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from mall.errors import invalid

MAX_MONEY = 10_000_000_000
MAX_TOTAL = 10_000_000
MAX_PER_USER = 100
MAX_SCOPE_IDS = 100
MAX_PUSH_USERS = 10_000

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Money = Annotated[int, msgspec.Meta(ge=0, le=MAX_MONEY)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Kind = Literal["threshold", "percent", "fixed"]
Scope = Literal["all", "categories", "products"]
PercentOff = Annotated[int, msgspec.Meta(ge=1, le=99)]
MaxDiscount = Annotated[int, msgspec.Meta(ge=1, le=MAX_MONEY)]
Total = Annotated[int, msgspec.Meta(ge=1, le=MAX_TOTAL)]
PerUser = Annotated[int, msgspec.Meta(ge=1, le=MAX_PER_USER)]
ScopeIds = Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**62)]],
                     msgspec.Meta(max_length=MAX_SCOPE_IDS)]
UserId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

TEMPLATE_FIELDS = ("name", "kind", "threshold", "amount", "percent_off", "max_discount",
                   "claim_starts_at", "claim_ends_at", "valid_from", "valid_until", "total",
                   "per_user", "scope", "scope_ids", "stackable")


class NewTemplate(msgspec.Struct, forbid_unknown_fields=True):
    """A coupon template. threshold: `amount` off once the scoped goods reach `threshold`;
    percent: `percent_off` percent off, at most `max_discount`; fixed: `amount` off."""

    name: Name
    kind: Kind
    claim_starts_at: AwareDatetime
    claim_ends_at: AwareDatetime
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    total: Total
    per_user: PerUser = 1
    amount: Money = 0
    threshold: Money = 0
    percent_off: PercentOff | None = None
    max_discount: MaxDiscount | None = None
    scope: Scope = "all"
    scope_ids: ScopeIds = msgspec.field(default_factory=list)
    stackable: bool = False

    def check(self, now: datetime) -> None:
        """The rules msgspec cannot express; a broken one raises 422 invalid_request."""
        if not self.name.strip() or not self.name.isprintable():
            raise invalid("name must be printable and not blank")
        self._check_kind()
        self._check_windows(now)
        if self.per_user > self.total:
            raise invalid("per_user cannot exceed total")
        if (self.scope == "all") != (not self.scope_ids):
            raise invalid("scope_ids must be empty for scope 'all' and non-empty otherwise")
        if len(set(self.scope_ids)) != len(self.scope_ids):
            raise invalid("scope_ids must not repeat")

    def _check_kind(self) -> None:
        if self.kind == "percent":
            if self.percent_off is None:
                raise invalid("a percent coupon needs percent_off")
            if self.amount:
                raise invalid("a percent coupon takes percent_off, not amount")
            return
        if self.percent_off is not None or self.max_discount is not None:
            raise invalid("percent_off and max_discount belong to percent coupons")
        if self.amount < 1:
            raise invalid(f"a {self.kind} coupon needs an amount of at least 1")
        if self.kind == "fixed" and self.threshold:
            raise invalid("a fixed coupon has no threshold; use kind 'threshold'")
        if self.kind == "threshold" and self.threshold < self.amount:
            raise invalid("a threshold coupon needs threshold >= amount")

    def _check_windows(self, now: datetime) -> None:
        if self.claim_ends_at <= self.claim_starts_at:
            raise invalid("claim_ends_at must be after claim_starts_at")
        if self.valid_until <= self.valid_from:
            raise invalid("valid_until must be after valid_from")
        if self.claim_ends_at <= now:
            raise invalid("the claim window is already over")
        if self.valid_until < self.claim_ends_at:
            raise invalid("valid_until cannot be before claim_ends_at")


class TemplateEdit(msgspec.Struct, forbid_unknown_fields=True):
    """Any fields of a template, before its claim window opens; null clears an optional one."""

    name: Name | UnsetType = UNSET
    kind: Kind | UnsetType = UNSET
    claim_starts_at: AwareDatetime | UnsetType = UNSET
    claim_ends_at: AwareDatetime | UnsetType = UNSET
    valid_from: AwareDatetime | UnsetType = UNSET
    valid_until: AwareDatetime | UnsetType = UNSET
    total: Total | UnsetType = UNSET
    per_user: PerUser | UnsetType = UNSET
    amount: Money | UnsetType = UNSET
    threshold: Money | UnsetType = UNSET
    percent_off: PercentOff | None | UnsetType = UNSET
    max_discount: MaxDiscount | None | UnsetType = UNSET
    scope: Scope | UnsetType = UNSET
    scope_ids: ScopeIds | UnsetType = UNSET
    stackable: bool | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {name: value for name in TEMPLATE_FIELDS
                if (value := getattr(self, name)) is not UNSET}

    def apply_to(self, current: NewTemplate) -> NewTemplate:
        changes = self.changes()
        if not changes:
            raise invalid("nothing to change")
        return msgspec.structs.replace(current, **changes)


class AllUsers(msgspec.Struct, tag="all_users", tag_field="kind", forbid_unknown_fields=True):
    """Every registered user."""


class LevelAtLeast(msgspec.Struct, tag="level_at_least", tag_field="kind",
                   forbid_unknown_fields=True):
    """Members whose spending reached the given level."""

    level: Annotated[int, msgspec.Meta(ge=0, le=1000)]


class OrderedSince(msgspec.Struct, tag="ordered_since", tag_field="kind",
                   forbid_unknown_fields=True):
    """Users with an order placed at or after `since`."""

    since: AwareDatetime


Segment = AllUsers | LevelAtLeast | OrderedSince


class PushBody(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of `user_ids` (at most 10,000) and `segment`."""

    user_ids: Annotated[list[UserId], msgspec.Meta(min_length=1, max_length=MAX_PUSH_USERS)] \
        | None = None
    segment: Segment | None = None

    def check(self) -> None:
        if (self.user_ids is None) == (self.segment is None):
            raise invalid("send exactly one of user_ids and segment")
