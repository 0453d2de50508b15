"""/api/openapi.json documents every route the app registers."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from mall.openapi import documented_routes


async def test_every_route_is_documented(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    routes = documented_routes(client.app)
    assert len(routes) >= 9
    for method, path, _ in routes:
        assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} is undocumented"
    buy = spec["paths"]["/api/v1/flash-sales/{sale_id}/orders"]["post"]
    schema = spec["components"]["schemas"]["PurchaseBody"]
    assert buy["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PurchaseBody")
    assert schema["properties"]["qty"]["minimum"] == 1
    assert {"202", "401", "403", "404", "409", "422"} <= set(buy["responses"])
