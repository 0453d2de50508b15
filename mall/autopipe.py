"""Auto-pipelined calls of one Lua script over a dedicated Redis connection.

Concurrent requests each call the script; every call made during one event-loop tick is
encoded straight to RESP and written to the socket in one write, and a reader task resolves
the callers' futures from the replies in order (hiredis parses them). This keeps the client
CPU per admission to a few microseconds, against tens for a redis-py pipeline and over a
hundred for an un-pipelined call: on the flash-sale hot path the client is the bottleneck,
not Redis.

If the connection breaks, every call in flight fails with ConnectionError (its effect in Redis
may or may not have happened: that is what idempotency keys are for) and the next call
reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def encode_command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(p) for p in parts)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class ScriptPipe:
    def __init__(self, redis_url: str, script_body: str) -> None:
        self._params = parse_url(redis_url)
        self._body = script_body.encode()
        self._sha = hashlib.sha1(self._body).hexdigest().encode()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        # Futures of calls sent and not yet answered, in send order, with their send time and
        # the command (kept to re-send with EVAL after NOSCRIPT).
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float, list[bytes]]] = (
            collections.deque()
        )
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._closed = False

    async def call(self, keys: list[str], args: list[Any]) -> Any:
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        parts = [b"EVALSHA", self._sha, b"%d" % len(keys), *(k.encode() for k in keys),
                 *(_as_bytes(a) for a in args)]
        self._send(parts, future)
        return await future

    def _send(self, parts: list[bytes], future: asyncio.Future[Any]) -> None:
        self._outbox.append(encode_command(*parts))
        self._waiting.append((future, time.monotonic(), parts))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        data, self._outbox = b"".join(self._outbox), []
        if self._writer is None or self._writer.is_closing():
            self._fail_all(RedisConnectionError("connection to Redis lost"))
            return
        self._writer.write(data)

    async def _connect(self) -> None:
        if self._closed:
            raise RedisConnectionError("the script pipe is closed")
        if self._connecting is not None:
            await asyncio.shield(self._connecting)
            return
        self._connecting = asyncio.get_running_loop().create_future()
        try:
            await self._open()
            self._connecting.set_result(None)
        except Exception as exc:
            error = RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}")
            self._connecting.set_exception(error)
            self._connecting.exception()  # retrieved: waiters get their own copy
            raise error from None
        finally:
            self._connecting = None

    async def _open(self) -> None:
        host, port = self._params.get("host", "127.0.0.1"), self._params.get("port", 6379)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
        )
        setup: list[list[bytes]] = []
        if self._params.get("password"):
            user = self._params.get("username")
            auth = [b"AUTH", *([user.encode()] if user else []), self._params["password"].encode()]
            setup.append(auth)
        setup.append([b"SELECT", b"%d" % int(self._params.get("db", 0))])
        setup.append([b"SCRIPT", b"LOAD", self._body])
        writer.write(b"".join(encode_command(*c) for c in setup))
        parser = hiredis.Reader()
        replies: list[Any] = []
        while len(replies) < len(setup):
            chunk = await asyncio.wait_for(reader.read(65536), CONNECT_TIMEOUT_S)
            if not chunk:
                raise ConnectionResetError("Redis closed the connection during set-up")
            parser.feed(chunk)
            while (reply := parser.gets()) is not False:
                replies.append(reply)
        for reply in replies:
            if isinstance(reply, Exception):
                writer.close()
                raise ResponseError(str(reply))
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read_replies(reader, writer, parser))
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch())

    async def _read_replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader
    ) -> None:
        try:
            while True:
                chunk = await reader.read(262144)
                if not chunk:
                    break
                parser.feed(chunk)
                while (reply := parser.gets()) is not False:
                    self._resolve(reply)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._writer is writer:
                self._drop_connection(RedisConnectionError("connection to Redis lost"))

    def _resolve(self, reply: Any) -> None:
        future, _, parts = self._waiting.popleft()
        if isinstance(reply, hiredis.ReplyError):
            if str(reply).startswith("NOSCRIPT") and parts[0] == b"EVALSHA":
                # The script cache was flushed: the call did not run; run it with its body.
                self._send([b"EVAL", self._body, *parts[2:]], future)
                return
            if not future.done():
                future.set_exception(ResponseError(str(reply)))
            return
        if not future.done():
            future.set_result(reply)

    def _drop_connection(self, error: Exception) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._fail_all(error)

    def _fail_all(self, error: Exception) -> None:
        while self._waiting:
            future, _, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    async def _watch(self) -> None:
        """A Redis that stops answering fails its callers instead of hanging them."""
        while not self._closed:
            await asyncio.sleep(1.0)
            if self._waiting and time.monotonic() - self._waiting[0][1] > CALL_TIMEOUT_S:
                log.warning("Redis did not answer within %.0fs; reconnecting", CALL_TIMEOUT_S)
                if self._reader_task is not None:
                    self._reader_task.cancel()
                self._drop_connection(RedisConnectionError("Redis did not answer in time"))

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._reader_task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._drop_connection(RedisConnectionError("the script pipe is closed"))
