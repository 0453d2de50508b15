"""The `mall writer` process: the consumer plus a small /metrics and /livez endpoint."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from mall.app import livez
from mall.metrics import metrics_handler
from mall.settings import Settings
from order_writer.consumer import OrderWriter

log = logging.getLogger(__name__)


async def _metrics_site(host: str, port: int) -> web.AppRunner | None:
    if port == 0:
        return None
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/livez", livez)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_writer(settings: Settings) -> None:
    writer = OrderWriter(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, writer.stop)
    runner = await _metrics_site(settings.writer_metrics_host, settings.writer_metrics_port)
    try:
        await writer.run()
    finally:
        if runner is not None:
            await runner.cleanup()
    log.info("writer stopped")
