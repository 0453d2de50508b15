"""0005_lifecycle up, down and up again leaves exactly the schema it found."""

from __future__ import annotations

import asyncpg

from mall.migrate import drop_database, migrate
from mall.settings import Settings
from tests.stack import unique_namespace

SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes
WHERE schemaname = 'public'
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
       || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger
WHERE NOT tgisinternal
UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public'
"""


async def schema(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r[0] for r in await conn.fetch(SCHEMA)}
    finally:
        await conn.close()


async def test_lifecycle_migration_reverts_fully() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_lc_')}"
    try:
        await migrate(url, target=4)
        before = await schema(url)
        assert await migrate(url, target=5) == ["up 0005_lifecycle"]
        during = await schema(url)
        assert any("order_history" in item for item in during - before)
        assert any("orders.tracking_number" in item for item in during - before)
        assert await migrate(url, target=4) == ["down 0005_lifecycle"]
        assert await schema(url) == before
        assert await migrate(url, target=5) == ["up 0005_lifecycle"]
        assert await schema(url) == during
    finally:
        await drop_database(url)
