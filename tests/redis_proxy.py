"""A TCP proxy in front of the real Redis that a test can make stop a chosen command.

`hold(pattern)` makes the next request whose bytes contain `pattern` (a script's SHA, a
command's argument) wait inside the proxy: `held` is set once it arrives, and nothing of it
reaches Redis until `release()`. Everything else passes untouched, so the app under test runs
as it does against Redis itself, with one step of its choosing frozen at the exact point the
test needs. redis-py writes each command in one call, so a request never spans two reads
unless it is larger than the read size.
"""

from __future__ import annotations

import asyncio
import contextlib

READ_SIZE = 1 << 16


class RedisHoldProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._pattern: bytes | None = None
        self._release = asyncio.Event()
        self.held = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def hold(self, pattern: bytes) -> None:
        """Hold the next request that contains `pattern` until `release()`."""
        self._pattern = pattern
        self._release.clear()
        self.held.clear()

    def release(self) -> None:
        self._pattern = None
        self._release.set()

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers.update((writer, up_writer))
        for task in (self._pump(reader, up_writer, inspect=True),
                     self._pump(up_reader, writer, inspect=False)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    inspect: bool) -> None:
        try:
            while chunk := await reader.read(READ_SIZE):
                if inspect and self._pattern is not None and self._pattern in chunk:
                    self._pattern = None
                    self.held.set()
                    await self._release.wait()
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
