"""Accounts: sign-up, log-in, tokens, profiles, addresses and roles."""

from aiohttp import web

from accounts import http_admin, http_auth, http_me
from accounts.codes import LoggingCodeSender
from accounts.resources import CODE_SENDER, accounts_ctx


def setup(app: web.Application) -> None:
    """Register the accounts routes and resources on the app."""
    app[CODE_SENDER] = LoggingCodeSender()
    app.cleanup_ctx.append(accounts_ctx)
    http_auth.setup_routes(app)
    http_me.setup_routes(app)
    http_admin.setup_routes(app)
