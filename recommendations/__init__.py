"""Recommendations: bought-together items and picks for a user, served from Redis."""

from aiohttp import web

from recommendations import http


def setup(app: web.Application) -> None:
    """Register the recommendation routes and the recompute loop on the app."""
    http.setup(app)
