"""Owned background loops: one step every interval until asked to stop, then awaited.

Stopping is a flag checked between steps, with task.cancel() only as the last resort after a
grace period: on Python 3.11 a cancellation can be lost inside asyncio.wait_for (which aio-pika
and our own waits use), leaving a loop that never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class StoppableLoop:
    """Subclasses implement `step()`; a step that returns True has more work waiting and runs
    again at once. A failing step is logged and tried again after the interval."""

    interval_s: float = 1.0

    def __init__(self) -> None:
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def step(self) -> bool | None:
        raise NotImplementedError

    async def run(self) -> None:
        while not self.stopping:
            try:
                if await self.step():
                    continue
            except Exception:  # one bad pass must not end the loop
                log.warning("%s failed; retrying", type(self).__name__, exc_info=True)
            await self.pause(self.interval_s)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def stop_task(task: asyncio.Task[None], grace_s: float) -> None:
    """Give a task `grace_s` to return by itself, then cancel it."""
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
