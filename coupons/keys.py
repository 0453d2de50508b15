"""Every Redis key of the coupons package, prefixed by the deployment's namespace.

All claim state of one template shares the hash tag `{cp<id>}`, so lua/coupon_claim.lua and
lua/coupon_state.lua touch a single Redis Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateKeys:
    meta: str
    issued: str
    holders: str
    _base: str

    def idempotency(self, user_id: str, key: str) -> str:
        # user ids are [A-Za-z0-9_-]; the key follows the last ':' so the two never mix.
        return f"{self._base}:idem:{user_id}:{key}"

    def claim(self, user_id: str, idem_key: str | None) -> list[str]:
        """KEYS of coupon_claim.lua, in its order."""
        idem = self.idempotency(user_id, idem_key) if idem_key else f"{self._base}:idem:-"
        return [self.meta, self.issued, self.holders, idem]

    def state(self) -> list[str]:
        """KEYS of coupon_state.lua, in its order."""
        return [self.meta, self.issued, self.holders]


@dataclass(frozen=True, slots=True)
class CouponKeys:
    namespace: str

    def template(self, template_id: int) -> TemplateKeys:
        base = f"{self.namespace}:{{cp{template_id}}}"
        return TemplateKeys(meta=f"{base}:meta", issued=f"{base}:issued",
                            holders=f"{base}:holders", _base=base)
