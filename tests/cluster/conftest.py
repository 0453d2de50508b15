"""One local three-master Redis Cluster for the cluster tests of the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.cluster.local_cluster import local_cluster

IN_FLIGHT = 96  # calls at once (the cluster client refuses rather than queues beyond its pool)


@pytest.fixture(scope="session")
def cluster_ports() -> Iterator[list[int]]:
    with local_cluster() as ports:
        yield ports


@pytest.fixture
async def cluster(cluster_ports: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0], max_connections=IN_FLIGHT)
    await client.initialize()
    yield client
    await client.aclose()
