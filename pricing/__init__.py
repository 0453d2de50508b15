"""Pricing: timed price lists and member-only prices."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the price-list routes on the app."""
