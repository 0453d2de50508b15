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
from mall.params import MAX_ID

F = TypeVar("F", bound=Callable[..., Any])
_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_MEDIA_RE = re.compile(r"\b(?:text|image|application)/[a-z0-9.+-]+")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
# Path parameters read with mall.params.path_id: positive integers up to MAX_ID (any other
# value answers 404). Other path parameters (order, payment and user ids, providers) are strings.
INTEGER_PATH_PARAMS = frozenset({
    "sale_id", "category_id", "product_id", "sku_id", "address_id", "template_id", "list_id",
    "request_id",
})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Answers any route may give besides its own: a body over the size limit, the rate limit on
# writes, a missing or invalid token on routes that need one.
BODY_TOO_LARGE = "error codes: payload_too_large (body over MALL_MAX_BODY_BYTES)"
RATE_LIMITED = "error codes: rate_limited (Retry-After, details.scope)"
UNAUTHORIZED = "error codes: unauthorized (missing, expired or invalid bearer token)"
NO_CONTENT_STATUSES = frozenset({204, 304})
# Success bodies are documented loosely: a JSON object or array.
JSON_BODY: dict[str, Any] = {"type": ["object", "array"]}


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
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, doc)
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


def _path_param(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if name in INTEGER_PATH_PARAMS:
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _parameters(path: str, doc: ApiDoc) -> list[dict[str, Any]]:
    params = [_path_param(name) for name in _PARAM_RE.findall(path)]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": text} for name, text in doc.query.items()]
    if doc.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}})
    return params


def _media_types(text: str) -> list[str]:
    """The media types of a success answer, read from its description: the types it names
    (Prometheus' text exposition format is text/plain), JSON when it names none or shows a
    JSON shape as well."""
    types = list(dict.fromkeys(_MEDIA_RE.findall(text)))
    if "exposition format" in text:
        types.append("text/plain")
    if not types or "JSON" in text or text.lstrip().startswith("{"):
        types.insert(0, "application/json")
    return types


def _success(status: int, text: str) -> dict[str, Any]:
    if status in NO_CONTENT_STATUSES:
        return {"description": text}
    content: dict[str, Any] = {}
    for media in _media_types(text):
        schema = JSON_BODY if media == "application/json" else {"type": "string"}
        content[media] = {"schema": schema}
    return {"description": text, "content": content}


def _error(text: str) -> dict[str, Any]:
    return {"description": text, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _responses(method: str, doc: ApiDoc) -> dict[str, Any]:
    responses = {str(status): _success(status, text) for status, text in doc.responses.items()}
    errors: dict[int, str] = {}
    if doc.roles:
        errors[401] = UNAUTHORIZED
    if doc.request is not None:
        errors[413] = BODY_TOO_LARGE
    if method in WRITE_METHODS:
        errors[429] = RATE_LIMITED
    errors.update({status: f"error codes: {codes}" for status, codes in doc.errors.items()})
    if doc.idempotent and "idempotency_in_progress" in errors.get(409, ""):
        errors[409] += ", idempotency_outcome_unknown"  # mall/idempotency.py
    for status, text in sorted(errors.items()):
        responses[str(status)] = _error(text)
    return responses


def _operation(method: str, path: str, doc: ApiDoc) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": doc.summary, "tags": [doc.tag],
                          "parameters": _parameters(path, doc)}
    if doc.roles:
        op["security"] = [{"bearer": []}]
        op["description"] = "Roles: " + ", ".join(doc.roles)
    if doc.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{doc.request.__name__}"}}}}
    op["responses"] = _responses(method, doc)
    return op


async def openapi_handler(request: web.Request) -> web.Response:
    return json_response(build_spec(request.app))
