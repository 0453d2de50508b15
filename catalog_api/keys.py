"""Every Redis key of the catalog, prefixed by the deployment's namespace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogKeys:
    namespace: str

    def product_detail(self, product_id: int) -> str:
        """Hash of a cached product detail: body, etag, published, generation."""
        return f"{self.namespace}:catalog:product:{product_id}"

    def product_generation(self, product_id: int) -> str:
        """A random token replaced on every change; a cached detail built under another is stale."""
        return f"{self.namespace}:catalog:product:{product_id}:gen"

