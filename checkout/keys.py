"""Every Redis key of the checkout package, built here and nowhere else."""

from __future__ import annotations


class CheckoutKeys:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def cart(self, user_id: str) -> str:
        # One hash tag per user: a cart is one key, wherever it lands on a cluster.
        return f"{self.namespace}:cart:{{{user_id}}}"
