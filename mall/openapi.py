"""The OpenAPI 3 document of every route, built from the handlers' own declarations.

Each handler carries its documentation with `@api_doc(...)`; request schemas come from the
same msgspec models that validate the bodies, so the document cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from mall.errors import json_response

F = TypeVar("F", bound=Callable[..., Any])
_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    tag: str
    request: type | None = None
    responses: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    idempotent: bool = False
    query: dict[str, str] = field(default_factory=dict)


def api_doc(**kwargs: Any) -> Callable[[F], F]:
    doc = ApiDoc(**kwargs)

    def attach(handler: F) -> F:
        handler.__api_doc__ = doc  # type: ignore[attr-defined]
        return handler

    return attach


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route a client can call, HEAD excepted."""
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or path is None:
            continue
        routes.append((route.method, path, route.handler))
    return routes


def build_spec(app: web.Application) -> dict[str, Any]:
    models: list[type] = []
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in documented_routes(app):
        doc: ApiDoc | None = getattr(handler, "__api_doc__", None)
        if doc is None:
            continue
        if doc.request is not None:
            models.append(doc.request)
        paths.setdefault(path, {})[method.lower()] = _operation(path, doc)
    _, components = msgspec.json.schema_components(
        models, ref_template="#/components/schemas/{name}"
    )
    components["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": "flashmall", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        },
    }


def _operation(path: str, doc: ApiDoc) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM_RE.findall(path)
    ]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": text} for name, text in doc.query.items()]
    if doc.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}})
    op: dict[str, Any] = {"summary": doc.summary, "tags": [doc.tag], "parameters": params}
    if doc.roles:
        op["security"] = [{"bearer": []}]
        op["description"] = "Roles: " + ", ".join(doc.roles)
    if doc.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{doc.request.__name__}"}}}}
    responses: dict[str, Any] = {
        str(status): {"description": text, "content": {"application/json": {"schema": {}}}}
        for status, text in doc.responses.items()
    }
    for status, codes in doc.errors.items():
        responses[str(status)] = {"description": f"error codes: {codes}", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op


async def openapi_handler(request: web.Request) -> web.Response:
    return json_response(build_spec(request.app))
