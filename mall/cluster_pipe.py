"""Auto-pipelined script calls on Redis Cluster: one ScriptPipe per master, chosen by the
hash slot of the call's first key (every key of a call shares its hash tag, so one slot).

The slot map is read with CLUSTER SLOTS on first use. A MOVED or ASK answer means the script
did not run on that node: the map is read again and the call is sent once more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from mall.autopipe import ScriptPipe

SLOTS = 16384


class ClusterScriptPipe:
    def __init__(self, startup_url: str, script_body: str) -> None:
        self._startup_url = startup_url
        self._body = script_body
        self._owner: list[str] = []  # slot -> "host:port" of its master
        self._pipes: dict[str, ScriptPipe] = {}
        self._loading: asyncio.Lock = asyncio.Lock()

    async def call(self, keys: list[str], args: list[Any]) -> Any:
        if not self._owner:
            await self._load_slots()
        slot = key_slot(keys[0].encode())
        try:
            return await self._pipes[self._owner[slot]].call(keys, args)
        except ResponseError as exc:
            if not str(exc).startswith(("MOVED", "ASK")):
                raise
        await self._load_slots()
        return await self._pipes[self._owner[slot]].call(keys, args)

    async def _load_slots(self) -> None:
        async with self._loading:
            client = Redis.from_url(self._startup_url)
            try:
                raw = await client.execute_command("CLUSTER SLOTS")
            finally:
                await client.aclose()
            owner = [""] * SLOTS
            for start, end, master in _ranges(raw):
                owner[start:end + 1] = [master] * (end - start + 1)
            for node in set(owner) - set(self._pipes):
                self._pipes[node] = ScriptPipe(f"redis://{node}/0", self._body)
            self._owner = owner

    def nodes(self) -> list[str]:
        return sorted(self._pipes)

    async def aclose(self) -> None:
        for pipe in self._pipes.values():
            await pipe.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ranges(raw: Any) -> list[tuple[int, int, str]]:
    """CLUSTER SLOTS as (first slot, last slot, "host:port" of the master), from either the raw
    reply or redis-py's parsed form {(start, end): {"primary": (host, port), ...}}."""
    if isinstance(raw, dict):
        return [(int(s), int(e), f"{_text(v['primary'][0])}:{int(v['primary'][1])}")
                for (s, e), v in raw.items()]
    return [(int(r[0]), int(r[1]), f"{_text(r[2][0])}:{int(r[2][1])}") for r in raw]
