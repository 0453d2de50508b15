"""Membership: the points ledger, levels by spending, daily check-in."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the membership routes on the app."""
