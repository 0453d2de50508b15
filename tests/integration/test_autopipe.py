"""The auto-pipelined script caller on real Redis: batching, NOSCRIPT, broken connections."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from mall.autopipe import ScriptPipe
from mall.settings import Settings

ECHO = "-- KEYS[1] a counter; ARGV[1] a tag. Returns {count, tag}.\n" \
       "return {redis.call('INCR', KEYS[1]), ARGV[1]}"


async def test_concurrent_calls_are_answered_in_order(redis: Redis, settings: Settings) -> None:
    pipe = ScriptPipe(settings.redis_url, ECHO)
    key = f"{settings.namespace}:pipe:order"
    try:
        replies = await asyncio.gather(*(pipe.call([key], [f"t{i}"]) for i in range(2000)))
    finally:
        await pipe.aclose()
    assert [r[1] for r in replies] == [f"t{i}".encode() for i in range(2000)]
    assert sorted(r[0] for r in replies) == list(range(1, 2001))


async def test_script_cache_flush_is_survived(redis: Redis, settings: Settings) -> None:
    pipe = ScriptPipe(settings.redis_url, ECHO)
    key = f"{settings.namespace}:pipe:flush"
    try:
        await pipe.call([key], ["a"])
        await redis.script_flush()
        replies = await asyncio.gather(*(pipe.call([key], [str(i)]) for i in range(50)))
        assert [r[1] for r in replies] == [str(i).encode() for i in range(50)]
        assert int(await redis.get(key)) == 51
    finally:
        await pipe.aclose()


async def test_script_errors_reach_only_their_caller(settings: Settings) -> None:
    pipe = ScriptPipe(settings.redis_url, "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = f"{settings.namespace}:pipe:err"
    try:
        results = await asyncio.gather(pipe.call([key], [1]), pipe.call([key], ["x"]),
                                       pipe.call([key], [2]), return_exceptions=True)
    finally:
        await pipe.aclose()
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ResponseError)


class CuttableProxy:
    """A TCP proxy to Redis whose connections the test can cut, like a network fault."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()


async def test_a_cut_connection_fails_callers_then_reconnects(settings: Settings) -> None:
    slow = "redis.call('INCR', KEYS[1]); local t = redis.call('TIME'); " \
           "local stop = t[1] * 1e6 + t[2] + 200000; " \
           "while true do local n = redis.call('TIME'); " \
           "if n[1] * 1e6 + n[2] > stop then break end end; return 1"
    proxy = CuttableProxy(int(parse_url(settings.redis_url)["port"]))
    await proxy.start()
    pipe = ScriptPipe(f"redis://127.0.0.1:{proxy.port}/0", slow)
    key = f"{settings.namespace}:pipe:cut"
    try:
        assert await pipe.call([key], []) == 1
        calls = [asyncio.ensure_future(pipe.call([key], [])) for _ in range(3)]
        await asyncio.sleep(0.05)
        proxy.cut()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        assert await pipe.call([key], []) == 1  # reconnected through the proxy
    finally:
        await pipe.aclose()
        await proxy.close()


async def test_unreachable_redis_is_a_connection_error(settings: Settings) -> None:
    pipe = ScriptPipe("redis://127.0.0.1:1/0", ECHO)
    with pytest.raises(RedisConnectionError):
        await pipe.call(["k"], ["a"])
    await pipe.aclose()
