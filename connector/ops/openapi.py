"""``GET /openapi.json``: the OpenAPI 3.1 document of the management API and the open
operations endpoints, built from the running app so it cannot drift from what is served.

Paths and methods come from ``app.router`` (nothing is listed twice); summaries, parameters
and schemas from the ``@api_operation`` descriptions on the handlers (``api_docs``), and every
schema from the pydantic models themselves (``model_json_schema``: request bodies as they are
validated, answers as they are serialized). Errors are RFC 9457 problem JSON
(``application/problem+json``, ``connector.problems``). A ``/management`` route without a
description still appears, marked ``x-bpc-undocumented``, and is listed in the document's
``x-bpc-undocumented`` so a test (and a reader) sees the gap.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from connector import __version__
from connector.ops.api_docs import (
    JSON,
    Answer,
    ApiOperation,
    api_operation,
    operation_of,
)
from connector.problems import PROBLEM_JSON

OPENAPI_VERSION = "3.1.0"
#: Open endpoints the document describes besides the management API.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json"})
MANAGEMENT_PREFIX = "/management/"
UNDOCUMENTED = "x-bpc-undocumented"
_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^}:]+)")
_PROBLEM_TITLES = {400: "Invalid request", 401: "Key missing or wrong", 403: "Forbidden",
                   404: "Not found", 409: "Conflict", 410: "Gone", 413: "Body too large",
                   422: "Not acceptable", 500: "Internal error (logged under errorId)",
                   502: "The counterparty failed", 503: "Not ready"}


class Problem(BaseModel):
    """An RFC 9457 problem; ``type`` is a stable URI to branch on, extensions vary by type."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None


def documented(path: str) -> bool:
    return path.startswith(MANAGEMENT_PREFIX) or path in OPEN_PATHS


def routes_of(app: web.Application) -> list[tuple[str, str, Any]]:
    """``(method, path template, handler)`` of every route the document covers (no HEAD)."""
    found = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        path = resource.canonical
        if documented(path):
            found.append((route.method, path, route.handler))
    return found


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (see the module docstring)."""
    described: list[tuple[str, str, Any, ApiOperation | None]] = [
        (method, path, handler, operation_of(handler)) for method, path, handler in routes_of(app)]
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for _, _, _, operation in described:
        if operation is None:
            continue
        if operation.body is not None:
            models.append((operation.body, "validation"))
        models += [(answer.model, "serialization") for answer in operation.answers
                   if answer.model is not None]
    unique = list(dict.fromkeys(models))
    refs, definitions = models_json_schema(unique, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    undocumented: list[str] = []
    operation_ids: set[str] = set()
    for method, path, handler, operation in sorted(described, key=lambda d: (d[1], d[0])):
        if operation is None:
            undocumented.append(f"{method} {path}")
            entry: dict[str, Any] = {"summary": "(not described yet)", UNDOCUMENTED: True,
                                     "responses": {"default": {"description": "unknown"}}}
        else:
            entry = _operation(method, path, handler, operation, refs)
        entry["operationId"] = _operation_id(handler, method, path, operation_ids)
        paths.setdefault(path, {})[method.lower()] = entry
    config_url = _public_url(app)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Battery passport connector node", "version": __version__,
                 "description": "The node's management API (operator key) and its "
                                "operations endpoints (open). Errors are RFC 9457 problem JSON."},
        "servers": [{"url": config_url}] if config_url else [],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "operatorKey": {"type": "http", "scheme": "bearer",
                                "description": "The operator API key (bpc_op_…)"},
                "metricsToken": {"type": "http", "scheme": "bearer",
                                 "description": "metrics_token, when the node sets one"},
            },
        },
        "security": [{"operatorKey": []}],
        UNDOCUMENTED: undocumented,
    }
    return document


def _public_url(app: web.Application) -> str | None:
    from connector.app import CONFIG

    config = app.get(CONFIG)
    return config.public_base_url if config is not None else None


def _schema(refs: dict[tuple[type[BaseModel], Any], dict[str, Any]], model: type[BaseModel],
            mode: str) -> dict[str, Any]:
    return refs[(model, mode)]


def _operation(method: str, path: str, handler: Any, operation: ApiOperation,
               refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"summary": operation.summary, "tags": [operation.tag]}
    description = operation.description or inspect.getdoc(handler)
    if description:
        entry["description"] = description
    entry["security"] = {None: [], "operator": [{"operatorKey": []}],
                         "metrics": [{"metricsToken": []}, {}]}[operation.auth]
    parameters = _parameters(path, operation)
    if parameters:
        entry["parameters"] = parameters
    if operation.body is not None:
        schema = _schema(refs, operation.body, "validation")
        entry["requestBody"] = {"required": operation.body_required,
                                "content": {media: {"schema": schema} if media == JSON else {}
                                            for media in operation.body_media}}
    responses: dict[str, Any] = {}
    for answer in operation.answers:
        responses[str(answer.status)] = _answer(answer, refs)
    for status in sorted(_problem_statuses(path, operation)):
        responses.setdefault(str(status), {
            "description": _PROBLEM_TITLES.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": _schema(refs, Problem, "serialization")}}})
    entry["responses"] = responses
    return entry


def _answer(answer: Answer, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    description = answer.description or ("No content" if answer.model is None else "OK")
    if answer.model is None and answer.media_type == JSON:
        return {"description": description}
    if answer.model is None:
        return {"description": description, "content": {answer.media_type: {}}}
    return {"description": description,
            "content": {answer.media_type: {"schema": _schema(refs, answer.model,
                                                              "serialization")}}}


def _parameters(path: str, operation: ApiOperation) -> list[dict[str, Any]]:
    declared = {(p.where, p.name): p for p in operation.params}
    parameters = []
    for name in _PATH_PARAM.findall(path):
        param = declared.pop(("path", name), None)
        schema: dict[str, Any] = {"type": "string"}
        if param is not None and param.enum:
            schema["enum"] = list(param.enum)
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema,
                           **({"description": param.description} if param else {})})
    for param in declared.values():
        schema = {"type": param.type}
        if param.enum:
            schema["enum"] = list(param.enum)
        parameters.append({"name": param.name, "in": param.where, "required": param.required,
                           "description": param.description, "schema": schema})
    return parameters


def _problem_statuses(path: str, operation: ApiOperation) -> set[int]:
    statuses = set(operation.problems) | {500}
    if operation.auth is not None:
        statuses.add(401)
    if _PATH_PARAM.search(path):
        statuses.add(404)
    if operation.body is not None or operation.params:
        statuses.add(400)
    if operation.body is not None:
        statuses.add(413)
    return statuses


def _operation_id(handler: Any, method: str, path: str, taken: set[str]) -> str:
    name = getattr(handler, "__name__", "") or method.lower()
    candidate = name
    if candidate in taken:
        words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
        candidate = "_".join([method.lower(), *words])
    taken.add(candidate)
    return candidate


class _Document(BaseModel):
    """An OpenAPI 3.1 document (this one)."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


_DOCUMENT = web.AppKey("openapi_document", dict)


@api_operation(summary="This document (OpenAPI 3.1)", tag="operations", auth=None,
               answers=(Answer(200, _Document, "The OpenAPI document"),), problems=())
async def openapi_json(request: web.Request) -> web.Response:
    cache: dict[str, Any] = request.app[_DOCUMENT]
    if "document" not in cache:  # the router is frozen once the app runs: build once
        cache["document"] = build_document(request.app)
    return web.json_response(cache["document"])


def add_routes(app: web.Application) -> None:
    app[_DOCUMENT] = {}
    app.router.add_get("/openapi.json", openapi_json)


__all__ = ["OPEN_PATHS", "UNDOCUMENTED", "Problem", "add_routes", "build_document",
           "routes_of"]
