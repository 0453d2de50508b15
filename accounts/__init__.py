"""Accounts: sign-up, log-in, tokens, profiles, addresses and roles."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the accounts routes and resources on the app."""
