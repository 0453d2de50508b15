"""Membership: the points ledger, levels by spending, daily check-in.

The order lifecycle calls the hooks (`on_completed`, `on_refunded`, `on_cancelled`) inside its
own transaction; checkout reads `spendable`, `member_price_eligible` and the rules in
`membership.points`.
"""

from aiohttp import web

from membership import admin, routes
from membership.hooks import on_cancelled, on_completed, on_refunded
from membership.ledger import spendable
from membership.levels import level_of, member_price_eligible

__all__ = ["level_of", "member_price_eligible", "on_cancelled", "on_completed", "on_refunded",
           "setup", "spendable"]


def setup(app: web.Application) -> None:
    """Register the membership routes on the app."""
    routes.setup_routes(app)
    admin.setup_routes(app)
