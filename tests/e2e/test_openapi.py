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


async def test_document_types_parameters_security_and_errors(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message"]
    assert error["properties"]["details"] == {"type": "object"}
    buy = spec["paths"]["/api/v1/flash-sales/{sale_id}/orders"]["post"]
    sale_id = next(p for p in buy["parameters"] if p["name"] == "sale_id")
    assert sale_id["schema"]["type"] == "integer" and sale_id["schema"]["minimum"] == 1
    assert buy["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    order = spec["paths"]["/api/v1/orders/{order_id}"]["get"]
    assert order["parameters"][0]["schema"]["type"] == "string"
    assert "security" not in spec["paths"]["/api/v1/products"]["get"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if int(status) >= 400 and path != "/readyz":  # its 503 reports the checks
                    assert response["content"]["application/json"]["schema"]["$ref"] == \
                        "#/components/schemas/Error", f"{method} {path} {status}"
            if "security" in op:
                assert "401" in op["responses"], f"{method} {path}"
            if "requestBody" in op:
                assert "413" in op["responses"], f"{method} {path}"
            if method in ("post", "put", "patch", "delete"):
                assert "429" in op["responses"], f"{method} {path}"
    report = spec["paths"]["/api/v1/admin/reports/sales"]["get"]["responses"]["200"]["content"]
    assert set(report) == {"application/json", "text/csv"}
    chart = spec["paths"]["/api/v1/admin/reports/sales/chart.svg"]["get"]["responses"]["200"]
    assert set(chart["content"]) == {"image/svg+xml"}
    assert "content" not in spec["paths"]["/api/v1/cart"]["delete"]["responses"]["204"]
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == \
        {"text/plain"}
