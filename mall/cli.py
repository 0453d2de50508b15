"""The `mall` command: migrate, serve, writer, token, reconcile, backup, restore."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

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


# The migration that moved phone numbers and addresses to sealed columns.
ENCRYPTION_VERSION = 17


@main.command()
@click.option("--to", "target", type=int, default=None,
              help="Schema version to move to (default: newest). Lower versions undo steps.")
def migrate(target: int | None) -> None:
    """Create the database if missing and apply (or undo) migrations."""
    from mall.migrate import current_version
    from mall.migrate import migrate as run_migrations

    settings = _settings()
    log.info("migrating %s", settings.describe())
    from mall.crypto_backfill import backfill

    steps = asyncio.run(run_migrations(settings.database_url, target))
    version = asyncio.run(current_version(settings.database_url))
    if version >= ENCRYPTION_VERSION:
        # Rows written before personal data was encrypted (or under an older key) are sealed
        # now; a second run changes nothing.
        asyncio.run(backfill(settings.database_url, settings))
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


@main.command()
@click.option("--flash-sale", "sale_id", type=click.IntRange(1), default=None,
              help="Check only this flash sale (default: every sale, SKU and coupon).")
@click.option("--repair", is_flag=True, help="Rebuild what is missing or wrong from PostgreSQL.")
@click.option("--force", is_flag=True, help="Repair even when the system is not settled.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet-s", type=click.FloatRange(0, 60), default=1.0, show_default=True,
              help="How long nothing may move for the system to count as settled.")
def reconcile(sale_id: int | None, repair: bool, force: bool, as_json: bool,
              quiet_s: float) -> None:
    """Compare Redis with PostgreSQL (exit 0: no drift, 1: drift, 3: not settled)."""
    settings = _settings()
    outcome = asyncio.run(_reconcile(settings, sale_id, repair, force, quiet_s))
    if as_json:
        import orjson

        click.echo(orjson.dumps(outcome.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        for line in outcome.lines():
            click.echo(line)
    sys.exit(outcome.exit_code)


async def _reconcile(settings: Settings, sale_id: int | None, repair: bool, force: bool,
                     quiet_s: float) -> Any:
    from mall.reconcile import reconcile as run_reconcile
    from mall.resources import make_pg_pool, make_redis

    pool = await make_pg_pool(settings)
    redis = make_redis(settings)
    try:
        return await run_reconcile(pool, redis, settings, sale_id=sale_id, repair=repair,
                                   force=force, quiet_s=quiet_s)
    finally:
        await redis.aclose()
        await pool.close()


@main.command()
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, writable=True),
              help="Directory for the dump and its manifest (created if missing).")
def backup(out_dir: str) -> None:
    """Dump the database (pg_dump, custom format) with a manifest of what it holds."""
    import asyncpg

    from mall.backup import BackupError, make_backup

    settings = _settings()
    try:
        manifest = asyncio.run(make_backup(settings, out_dir))
    except (BackupError, OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup written to {out_dir}: schema version {manifest['schema_version']}, "
               f"{sum(manifest['orders_by_status'].values())} order(s)")


@main.command()
@click.option("--from", "from_dir", required=True,
              type=click.Path(exists=True, file_okay=False),
              help="Directory written by `mall backup`.")
@click.option("--database-url", default=None,
              help="Database to restore into (default: MALL_DATABASE_URL).")
@click.option("--force", is_flag=True,
              help="Replace a database that is not empty, and rebuild Redis even when the "
                   "system is not settled.")
def restore(from_dir: str, database_url: str | None, force: bool) -> None:
    """Restore a backup into an empty database, then rebuild Redis for the namespace."""
    import asyncpg

    from mall.backup import BackupError, restore_backup

    settings = _settings()
    if database_url:
        settings = settings.with_(database_url=database_url)
    try:
        lines, code = asyncio.run(restore_backup(settings, from_dir, force))
    except (BackupError, OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)
    sys.exit(code)


if __name__ == "__main__":
    main()
