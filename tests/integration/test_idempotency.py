"""mall/idempotency.py on real Redis: a crash blocks a key for a lease, not a day; a failure
whose outcome is unknown is never run a second time; a clean refusal may be retried."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from aiohttp import web
from redis.asyncio import Redis

from mall.crypto import data_cipher
from mall.errors import ApiError
from mall.idempotency import replay_or_run
from mall.settings import Settings

DEADLINE_S = 60


def record(settings: Settings) -> str:
    return f"{settings.namespace}:idem:test:{uuid.uuid4().hex}"


async def test_a_failure_after_the_work_may_have_happened_is_not_run_again(
    redis: Redis, settings: Settings
) -> None:
    key, runs = record(settings), []
    cipher = data_cipher(settings)

    async def commit_then_fail() -> web.Response:
        runs.append(1)  # the work is done ...
        raise ConnectionResetError("... and the answer is lost")

    with pytest.raises(ConnectionResetError):
        await replay_or_run(redis, cipher, key, b"{}", 60, commit_then_fail)
    for _ in range(3):
        with pytest.raises(ApiError) as err:
            await replay_or_run(redis, cipher, key, b"{}", 60, commit_then_fail)
        assert (err.value.status, err.value.code) == (409, "idempotency_outcome_unknown")
    assert len(runs) == 1
    with pytest.raises(ApiError) as err:  # another body is still another body
        await replay_or_run(redis, cipher, key, b"{\"x\": 1}", 60, commit_then_fail)
    assert err.value.code == "idempotency_key_reused"


async def test_a_clean_refusal_may_be_retried(redis: Redis, settings: Settings) -> None:
    key, runs = record(settings), []
    cipher = data_cipher(settings)

    async def refuse_then_create() -> web.Response:
        runs.append(1)
        if len(runs) == 1:
            raise ApiError(409, "address_limit_reached", "full")
        return web.json_response({"id": 7}, status=201)

    with pytest.raises(ApiError):
        await replay_or_run(redis, cipher, key, b"{}", 60, refuse_then_create)
    first = await replay_or_run(redis, cipher, key, b"{}", 60, refuse_then_create)
    again = await replay_or_run(redis, cipher, key, b"{}", 60, refuse_then_create)
    assert (first.status, again.status, again.body) == (201, 201, first.body)
    assert len(runs) == 2


async def test_a_long_request_keeps_its_lease(redis: Redis, settings: Settings) -> None:
    key = record(settings)
    cipher = data_cipher(settings)
    release = asyncio.Event()

    async def slow() -> web.Response:
        await release.wait()
        return web.json_response({"ok": True}, status=201)

    task = asyncio.create_task(replay_or_run(redis, cipher, key, b"{}", 60, slow, lease_s=3))
    await asyncio.sleep(4)  # longer than its lease: renewed all along
    with pytest.raises(ApiError) as err:
        await replay_or_run(redis, cipher, key, b"{}", 60, slow, lease_s=3)
    assert err.value.code == "idempotency_in_progress"
    release.set()
    assert (await task).status == 201
    assert 0 < await redis.ttl(key) <= 60


CRASHING = textwrap.dedent("""
    import asyncio, sys
    from redis.asyncio import Redis
    from mall.crypto import data_cipher
    from mall.idempotency import replay_or_run
    from mall.settings import Settings

    async def main():
        redis = Redis.from_url(sys.argv[1])
        async def forever():
            print("running", flush=True)
            await asyncio.Event().wait()
        await replay_or_run(redis, data_cipher(Settings.from_env()), sys.argv[2], b"{}",
                            86400, forever, lease_s=1)

    asyncio.run(main())
""")


async def test_a_process_killed_mid_request_blocks_its_key_for_a_lease_only(
    redis: Redis, settings: Settings
) -> None:
    key = record(settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING, settings.redis_url, key, stdout=subprocess.PIPE,
        env=settings.process_env())
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)
        assert line.strip() == b"running"
        assert await redis.get(key) == b"pending"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    for _ in range(DEADLINE_S * 10):
        if not await redis.exists(key):
            break
        await asyncio.sleep(0.1)
    assert not await redis.exists(key), "a dead request's record outlived its lease"

    async def create() -> web.Response:
        return web.json_response({"id": 1}, status=201)

    resp = await replay_or_run(redis, data_cipher(settings), key, b"{}", 60, create)
    assert resp.status == 201
