"""Audit: the append-only log of staff actions, logins, permission denials and payment
callbacks."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the audit routes on the app."""
