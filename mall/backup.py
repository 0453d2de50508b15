"""Backup and restore: a pg_dump of the database with a manifest, and a restore that rebuilds
the namespace's Redis state from the restored database (mall/reconcile.py).

pg_dump and pg_restore come from the PostgreSQL client tools. The password never appears on a
command line or in output: it goes to the tools through PGPASSWORD.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from mall.migrate import current_version, drop_database, ensure_database
from mall.settings import Settings, mask_dsn

DUMP_FILE = "mall.dump"
MANIFEST_FILE = "manifest.json"
FORMAT = 1
ORDERS_BY_STATUS = "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"
USER_TABLES = """
SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
"""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is safe to print."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools "
                          "(Debian: apt-get install postgresql-client)")
    return path


def _split_password(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries the password."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = parts.password
    netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
    return urlunsplit(parts._replace(netloc=netloc)), env


async def _run(args: list[str], env: dict[str, str], what: str, dsn: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()[-5:]
        raise BackupError(f"{what} of {mask_dsn(dsn)} failed (exit {proc.returncode}): "
                          + " / ".join(message))


async def orders_by_status(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["status"]: r["n"] for r in await conn.fetch(ORDERS_BY_STATUS)}
    finally:
        await conn.close()


async def make_backup(settings: Settings, out_dir: str) -> dict[str, Any]:
    pg_dump = _tool("pg_dump")
    out = Path(out_dir)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    dsn, env = _split_password(settings.database_url)
    started = datetime.now(UTC)
    version = await current_version(settings.database_url)
    await _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                f"--file={out / DUMP_FILE}", f"--dbname={dsn}"], env, "pg_dump",
               settings.database_url)
    # Counted after the dump, which is one snapshot: orders written meanwhile make these
    # counts at least the dump's, so a restore checks the dump holds no more than this.
    manifest = {
        "format": FORMAT,
        "created_at": started.isoformat(),
        "schema_version": version,
        "database": urlsplit(settings.database_url).path.lstrip("/"),
        "namespace": settings.namespace,
        "orders_by_status": await orders_by_status(settings.database_url),
    }
    await asyncio.to_thread((out / MANIFEST_FILE).write_bytes,
                            orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def read_manifest(from_dir: str) -> dict[str, Any]:
    path = Path(from_dir) / MANIFEST_FILE
    if not path.exists() or not (Path(from_dir) / DUMP_FILE).exists():
        raise BackupError(f"{from_dir} holds no backup ({MANIFEST_FILE} and {DUMP_FILE})")
    manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


async def _prepare_database(dsn: str, force: bool) -> None:
    if await ensure_database(dsn):
        return
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetchval(USER_TABLES)
    finally:
        await conn.close()
    if tables:
        if not force:
            raise BackupError(f"{mask_dsn(dsn)} is not empty ({tables} table(s)); restore into "
                              "an empty database or pass --force to replace it")
        await drop_database(dsn)
        await ensure_database(dsn)


async def restore_backup(settings: Settings, from_dir: str, force: bool) -> tuple[list[str], int]:
    """Returns the lines to print and the exit status (that of the Redis rebuild)."""
    from mall.reconcile import reconcile
    from mall.resources import make_pg_pool, make_redis

    pg_restore = _tool("pg_restore")
    manifest = await asyncio.to_thread(read_manifest, from_dir)
    await _prepare_database(settings.database_url, force)
    dsn, env = _split_password(settings.database_url)
    await _run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
                f"--dbname={dsn}", str(Path(from_dir) / DUMP_FILE)], env, "pg_restore",
               settings.database_url)
    restored = await orders_by_status(settings.database_url)
    version = await current_version(settings.database_url)
    if version != manifest["schema_version"]:
        raise BackupError(f"restored schema version {version}, the manifest says "
                          f"{manifest['schema_version']}")
    lines = [f"restored {from_dir} ({manifest['created_at']}) into "
             f"{mask_dsn(settings.database_url)}: schema version {version}, "
             f"{sum(restored.values())} order(s)"]
    for status, n in sorted(manifest["orders_by_status"].items()):
        if restored.get(status, 0) > n:
            raise BackupError(f"the dump holds {restored[status]} {status} orders, the manifest "
                              f"at most {n}")
    pool = await make_pg_pool(settings)
    redis = make_redis(settings)
    try:
        outcome = await reconcile(pool, redis, settings, repair=True, force=force)
    finally:
        await redis.aclose()
        await pool.close()
    lines.append(f"Redis of namespace {settings.namespace}:")
    lines += ["  " + line for line in outcome.lines()]
    return lines, outcome.exit_code
