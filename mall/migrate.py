"""Plain SQL migrations applied in order, recorded in a version table, reversible.

`migrations/NNNN_name.up.sql` moves the schema to version NNNN; `NNNN_name.down.sql` undoes it.
Each step runs in its own transaction under an advisory lock, so two `mall migrate` runs at
once apply every step exactly once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
_LOCK_ID = 73_051_957  # any constant shared by every migrate run

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""
SELECT_VERSIONS = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_VERSION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
DELETE_VERSION = "DELETE FROM schema_migrations WHERE version = $1"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, dict[str, str]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise ValueError(f"unexpected migration file name: {path.name}")
        version, name, direction = int(match[1]), match[2], match[3]
        entry = found.setdefault(version, {"name": name})
        entry[direction] = path.read_text()
    migrations = []
    for version in sorted(found):
        entry = found[version]
        if "up" not in entry or "down" not in entry:
            raise ValueError(f"migration {version:04d} needs both an up and a down file")
        migrations.append(Migration(version, entry["name"], entry["up"], entry["down"]))
    return migrations


async def ensure_database(dsn: str) -> bool:
    """Create the database named in the DSN if it does not exist. True when it was created."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name:
        raise ValueError("the database URL names no database")
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{_quote_ident(name)}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another run created it between our check and our CREATE.
            return False
        return True
    finally:
        await conn.close()


async def drop_database(dsn: str) -> None:
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    conn = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_quote_ident(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def _quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]{1,63}", name):
        raise ValueError("database names may contain only letters, digits and '_'")
    return name


async def migrate(dsn: str, target: int | None = None) -> list[str]:
    """Move the schema to `target` (default: the newest version). Returns the steps taken."""
    migrations = load_migrations()
    if target is None:
        target = migrations[-1].version if migrations else 0
    known = {m.version for m in migrations} | {0}
    if target not in known:
        raise ValueError(f"no migration with version {target}")
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    steps: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(CREATE_VERSION_TABLE)
        applied = {r["version"] for r in await conn.fetch(SELECT_VERSIONS)}
        for m in migrations:
            if m.version <= target and m.version not in applied:
                async with conn.transaction():
                    await conn.execute(m.up)
                    await conn.execute(INSERT_VERSION, m.version, m.name)
                steps.append(f"up {m.version:04d}_{m.name}")
        for m in reversed(migrations):
            if m.version > target and m.version in applied:
                async with conn.transaction():
                    await conn.execute(m.down)
                    await conn.execute(DELETE_VERSION, m.version)
                steps.append(f"down {m.version:04d}_{m.name}")
    finally:
        await conn.close()
    for step in steps:
        log.info("migration %s", step)
    return steps


async def current_version(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(CREATE_VERSION_TABLE)
        return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
    finally:
        await conn.close()
