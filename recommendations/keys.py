"""Every Redis key of the recommendations, prefixed by the deployment's namespace.

All of them share the hash tag `{recs}`: a refresh writes a batch of counts together with the
watermark and the lock check in one MULTI, which Redis Cluster allows only within one slot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecsKeys:
    namespace: str

    @property
    def _base(self) -> str:
        return f"{self.namespace}:{{recs}}"

    def bought_with(self, product_id: int) -> str:
        """Sorted set: other products bought in the same orders, scored by how many orders."""
        return f"{self._base}:co:{product_id}"

    @property
    def popular(self) -> str:
        """Sorted set: products by units sold in the popularity window, over the whole mall."""
        return f"{self._base}:popular"

    def popular_in(self, category_id: int) -> str:
        """Sorted set: the same, within one category."""
        return f"{self._base}:popular:cat:{category_id}"

    @property
    def popular_categories(self) -> str:
        """Set of the category ids that have a popular_in key, so stale ones can be removed."""
        return f"{self._base}:popular:cats"

    @property
    def state(self) -> str:
        """Hash: the refresh watermarks (see recommendations/build.py)."""
        return f"{self._base}:state"

    @property
    def lock(self) -> str:
        """The refresh lock: a random token set with NX and an expiry."""
        return f"{self._base}:lock"
