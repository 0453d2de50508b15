"""The `mall` command: migrate, serve, writer, token."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from mall.settings import Settings

log = logging.getLogger("mall")


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    return settings


def _warn_dev_secret(settings: Settings) -> None:
    if settings.uses_dev_secret:
        log.warning("MALL_JWT_SECRET is not set: using the development secret")


@click.group()
def main() -> None:
    """flashmall: a high-concurrency online mall around a flash-sale checkout core."""


@main.command()
@click.option("--to", "target", type=int, default=None,
              help="Schema version to move to (default: newest). Lower versions undo steps.")
def migrate(target: int | None) -> None:
    """Create the database if missing and apply (or undo) migrations."""
    from mall.migrate import current_version
    from mall.migrate import migrate as run_migrations

    settings = _settings()
    log.info("migrating %s", settings.describe())
    steps = asyncio.run(run_migrations(settings.database_url, target))
    version = asyncio.run(current_version(settings.database_url))
    click.echo(f"schema at version {version} ({len(steps)} step(s) applied)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes sharing the port (SO_REUSEPORT).")
@click.option("--reuse-port", is_flag=True, hidden=True)
def serve(host: str, port: int, workers: int, reuse_port: bool) -> None:
    """Serve the HTTP API and run the outbox relay."""
    settings = _settings()
    if workers > 1:
        from mall.supervisor import supervise

        sys.exit(supervise(host, port, workers))
    import uvloop
    from aiohttp import web

    from mall.app import create_app

    _warn_dev_secret(settings)
    log.info("serving on http://%s:%d (%s)", host, port, settings.describe())
    uvloop.install()
    web.run_app(
        create_app(settings), host=host, port=port, reuse_port=reuse_port or None,
        access_log=None, print=None, shutdown_timeout=10,
    )


@main.command()
def writer() -> None:
    """Consume accepted orders from RabbitMQ and persist them to PostgreSQL."""
    import uvloop

    from order_writer.process import run_writer

    settings = _settings()
    log.info("writer starting (%s)", settings.describe())
    uvloop.run(run_writer(settings))


@main.command()
@click.option("--sub", required=True, help="User id (letters, digits, '_' or '-').")
@click.option("--role", type=click.Choice(["customer", "member", "staff", "admin"]),
              default="customer", show_default=True)
@click.option("--ttl", type=click.IntRange(1, 365 * 86400), default=3600, show_default=True,
              help="Lifetime in seconds.")
def token(sub: str, role: str, ttl: int) -> None:
    """Print a signed JWT, for operators and load tests."""
    from mall.auth import issue_token

    settings = Settings.from_env()
    try:
        click.echo(issue_token(settings.jwt_secret, sub, role, ttl))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


if __name__ == "__main__":
    main()
