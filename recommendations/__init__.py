"""Recommendations: bought-together items and picks for a user, served from Redis."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the recommendation routes and the recompute loop on the app."""
