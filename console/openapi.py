"""The OpenAPI 3.1 document of the JSON API, built from the endpoint declarations
(console/endpoints.py): every path, method, parameter, body, the permission it needs and
the answers it gives. Served at `GET /api/openapi.json`."""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from console.endpoints import ENDPOINTS, Endpoint

COMMON_RESPONSES = {400: "bad input (the message says which)", 401: "not signed in",
                    403: "the role may not, or a cross-site / CSRF-less request"}
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _path(path: str) -> str:
    return re.sub(r"\{([a-z_]+)(:[^}]*)?\}", r"{\1}", path)


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__name__}",
        "tags": list(endpoint.tags),
    }
    if endpoint.permission is None:
        op["security"] = []
        op["description"] = "No sign-in needed."
    else:
        op["description"] = f"Needs the permission `{endpoint.permission.value}` (docs/roles.md)."
        op["x-permission"] = endpoint.permission.value
    params = [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
               "schema": dict(p.schema), **({"description": p.description} if p.description else {})}
              for p in endpoint.params]
    if params:
        op["parameters"] = params
    if endpoint.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(endpoint.body)}}}
    elif endpoint.upload:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"]}}}}
    responses: dict[str, Any] = {}
    for status, text in sorted({**({} if endpoint.permission is None else COMMON_RESPONSES),
                                **endpoint.responses}.items()):
        answer: dict[str, Any] = {"description": text}
        if status >= 400:
            answer["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
        elif endpoint.produces:
            answer["content"] = {endpoint.produces: {}}
        responses[str(status)] = answer
    if not any(s.startswith("2") or s.startswith("3") for s in responses):
        responses["200"] = {"description": "done", "content": {endpoint.produces: {}}}
    op["responses"] = responses
    return op


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint.page:
            continue
        paths.setdefault(_path(endpoint.path), {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "dunline console API", "version": "1",
                 "description": "Every call needs a signed-in user: a session (POST /api/session; state "
                                "changes then carry X-CSRF-Token) or an API token (Authorization: Bearer)."},
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "dunline_session"},
            "token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"session": []}, {"token": []}],
        "paths": paths,
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[ENDPOINTS]))
