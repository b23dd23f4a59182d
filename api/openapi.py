"""The OpenAPI document: problem+json responses and bearer security from each route's rule.

FastAPI documents what a handler returns; the errors come from the layers
around it (guard, middleware, validation), so they are added here, once, from
the same rules the guard enforces.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import RouteContext

from api.errors import PROBLEM_JSON, Problem, problem_responses
from api.security import api_routes, rules_of
from trust.settings import Settings

_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API token, trst_<id>_<secret>, from POST /v1/tokens or trustctl",
}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _build(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _build(app: FastAPI, settings: Settings) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["securitySchemes"] = {"bearer": _BEARER}
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format].get(method.lower())
            if operation is not None:
                _document(operation, route, settings)
    # FastAPI's own validation error schemas are replaced by Problem everywhere.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


def _document(operation: dict[str, Any], route: RouteContext, settings: Settings) -> None:
    statuses = {500}
    rules = rules_of(route)
    operations_route = any(r.operations for r in rules)
    if not operations_route:
        statuses |= {429, 503}
        if any(not r.public for r in rules):
            statuses |= {401, 403}
            optional = any(r.is_public(settings) for r in rules)
            operation["security"] = [{}, {"bearer": []}] if optional else [{"bearer": []}]
    if route.body_field is not None:
        statuses |= {400, 413, 415, 422}
    if route.dependant.path_params or route.dependant.query_params:
        statuses.add(422)
    if "POST" in (route.methods or ()):
        statuses.add(409)
    responses = operation.setdefault("responses", {})
    for status, doc in problem_responses(*sorted(statuses)).items():
        existing = responses.get(str(status))
        if existing is None or PROBLEM_JSON not in existing.get("content", {}):
            responses[str(status)] = doc
