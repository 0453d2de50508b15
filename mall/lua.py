"""Loads the Redis scripts of `lua/` and runs them (the hot path uses mall.autopipe)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"


def read_script(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


class Script:
    """One Lua script, called by SHA and loaded on first NOSCRIPT."""

    def __init__(self, redis: Redis, name: str) -> None:
        self.name = name
        self.body = read_script(name)
        self.sha = hashlib.sha1(self.body.encode()).hexdigest()
        self._redis = redis

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._redis.script_load(self.body)
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)
