"""The order lifecycle's routes and the background work it owns (the payment-deadline sweep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from mall.background import stop_task
from mall.resources import PG, SETTINGS
from order_writer import customer, staff
from order_writer.lifecycle import REFUNDER, ImmediateRefunder
from order_writer.timeouts import PaymentDeadlineSweeper

SWEEPER_STOP_TIMEOUT_S = 10.0


async def lifecycle_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the sweeper once PostgreSQL is up; on shutdown ask it to stop, wait, then cancel."""
    settings = app[SETTINGS]
    if REFUNDER not in app:
        app[REFUNDER] = ImmediateRefunder(app[PG])
    sweeper = PaymentDeadlineSweeper(app[PG], app[REFUNDER], settings.payment_timeout_s,
                                     settings.payment_sweep_s)
    task = asyncio.create_task(sweeper.run(), name="payment-deadline-sweeper")
    yield
    sweeper.stop()
    await stop_task(task, SWEEPER_STOP_TIMEOUT_S)


def setup(app: web.Application) -> None:
    """Register the lifecycle routes; call after the PostgreSQL context is registered."""
    app.cleanup_ctx.append(lifecycle_ctx)
    customer.setup_routes(app)
    staff.setup_routes(app)
