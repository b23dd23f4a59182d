"""A lean dispatcher for the API routes whose declaration is simple enough.

FastAPI's generic request path (routing across every route, the dependency solver,
its exception and exit-stack middleware) costs more per request than a signature or
a timestamp token (about 0.5 ms of Python per request here). Routes whose
parameters are only path parameters, one JSON body model, the route's guard and
``request -> service`` providers are run here instead, with FastAPI's own pieces
where they carry its semantics: the route's path regex and convertors, its body and
response fields (same validation errors, same serialisation), and the route's guard
instance (authentication, rate limit, authorisation, Idempotency-Key). Everything
else, and every request while dependency overrides are set (tests), goes to FastAPI
unchanged. The routes stay declared on FastAPI, so OpenAPI describes them as before.

The order of checks is FastAPI's: body JSON syntax, then the guard, then path and
body validation (errors of both reported together), then the endpoint.
"""

from __future__ import annotations

import email.message
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_missing_field_error, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.idempotency import Replay
from api.security import Guard
from trust.errors import TrustError


@dataclass(frozen=True)
class _Plan:
    """How to run one eligible route without FastAPI's generic machinery."""

    context: Any  # fastapi.routing.RouteContext of the route as served
    dependant: Dependant
    providers: tuple[tuple[str | None, Callable[[Request], Any]], ...]
    body_field: Any

    async def run(self, request: Request, path_params: dict[str, Any]) -> Response:
        d = self.dependant
        body: Any = None
        has_body = False
        if self.body_field is not None:
            raw = await request.body()
            if raw:
                has_body = True
                body = _json_body(raw, request.headers.get("content-type"))
        values: dict[str, Any] = {}
        for name, provide in self.providers:
            value = provide(request)
            if inspect.isawaitable(value):
                value = await value
            if name is not None:
                values[name] = value
        problems: list[Any] = []
        for param in d.path_params:
            # request_params_to_args for a path parameter, without its generic lookups.
            value, errors_ = param.validate(
                path_params.get(param.alias), values, loc=("path", param.alias)
            )
            values[param.name] = value
            problems.extend(errors_)
        if d.query_params:
            values_, query_problems = request_params_to_args(d.query_params, request.query_params)
            values.update(values_)
            problems.extend(query_problems)
        if self.body_field is not None:
            if has_body:
                value, body_errors = self.body_field.validate(body, values, loc=("body",))
                values[self.body_field.name] = value
                problems.extend(body_errors)
            elif self.body_field.field_info.is_required():
                problems.append(get_missing_field_error(loc=("body",)))
            else:
                values[self.body_field.name] = self.body_field.get_default()
        if problems:
            raise RequestValidationError(problems)
        if d.request_param_name is not None:
            values[d.request_param_name] = request
        # FastAPI's temporary response, for endpoints that set a status or headers on it.
        sub_response: Response | None = None
        if d.response_param_name is not None:
            sub_response = Response()
            del sub_response.headers["content-length"]
            sub_response.status_code = None  # type: ignore[assignment]
            values[d.response_param_name] = sub_response
        assert d.call is not None
        if inspect.iscoroutinefunction(d.call):
            result = await d.call(**values)
        else:
            result = await run_in_threadpool(d.call, **values)
        if isinstance(result, Response):
            return result
        c = self.context
        content = await serialize_response(
            field=c.response_field,
            response_content=result,
            include=c.response_model_include,
            exclude=c.response_model_exclude,
            by_alias=c.response_model_by_alias,
            exclude_unset=c.response_model_exclude_unset,
            exclude_defaults=c.response_model_exclude_defaults,
            exclude_none=c.response_model_exclude_none,
            dump_json=c.response_field is not None,
        )
        status = (sub_response and sub_response.status_code) or c.status_code or 200
        if c.response_field is not None:
            response = Response(content, status_code=status, media_type="application/json")
        else:
            response = c.response_class.value(content, status_code=status)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        if sub_response is not None:
            response.headers.raw.extend(sub_response.headers.raw)
        return response


def _json_body(raw: bytes, content_type: str | None) -> Any:
    """FastAPI's rule: JSON when the content type is application/json or +json, else the
    bytes (which then fail validation, answered as 415 by api/errors.py)."""
    if not content_type:
        return raw
    if content_type == "application/json":
        return _loads(raw)
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return raw
    return _loads(raw)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}]
        ) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}]
        ) from exc


def _provider(sub: Dependant) -> Callable[[Request], Any] | None:
    """The callable for a sub-dependency the lean path can run: a guard, or a function of
    the request alone (service providers)."""
    if sub.dependencies or sub.path_params or sub.query_params or sub.header_params:
        return None
    if sub.cookie_params or sub.body_params or sub.call is None:
        return None
    if sub.request_param_name is None or inspect.isgeneratorfunction(sub.call):
        return None
    if inspect.isasyncgenfunction(sub.call):
        return None
    call = sub.call
    name = sub.request_param_name
    if isinstance(call, Guard):
        return call
    return lambda request: call(**{name: request})


def _returns_response(call: Callable[..., Any]) -> bool:
    """Whether the endpoint is declared to return a Response (so its response class, used
    only to wrap other return values, never applies)."""
    try:
        returned = inspect.signature(call, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return False
    return inspect.isclass(returned) and issubclass(returned, Response)


def _plan(context: Any) -> _Plan | None:
    route = context.original_route
    dependant: Dependant | None = context.dependant
    if not isinstance(route, APIRoute) or dependant is None or dependant.call is None:
        return None
    if inspect.isgeneratorfunction(dependant.call) or inspect.isasyncgenfunction(dependant.call):
        return None
    if not isinstance(context.response_class, DefaultPlaceholder) and not _returns_response(
        dependant.call
    ):
        return None
    if context.is_sse_stream or context.is_json_stream or context.stream_item_field is not None:
        return None
    if dependant.header_params or dependant.cookie_params:
        return None
    special = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if any(s is not None for s in special):
        return None
    if len(dependant.body_params) > 1 or context._embed_body_fields:
        return None
    body_field = dependant.body_params[0] if dependant.body_params else None
    if body_field is not None and body_field.field_info.__class__.__name__ != "Body":
        return None  # forms and files keep FastAPI's parsing
    providers = []
    seen: set[int] = set()
    for sub in dependant.dependencies:
        provide = _provider(sub)
        if provide is None:
            return None
        if id(sub.call) in seen:
            return None  # FastAPI runs a repeated dependency once; keep that case there
        seen.add(id(sub.call))
        providers.append((sub.name, provide))
    return _Plan(context, dependant, tuple(providers), body_field)


@dataclass(frozen=True)
class _Entry:
    prefix: str  # the path's literal start: a request path not starting with it cannot match
    context: Any
    plan: _Plan | None
    # An API route's matching pieces, read once: RouteContext delegates each attribute read.
    regex: re.Pattern[str] | None = None
    convertors: dict[str, Any] = field(default_factory=dict)
    methods: frozenset[str] = frozenset()
    endpoint: Any = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """``RouteContext.matches`` (FastAPI's rule for an API route) on the pieces kept."""
        if self.regex is None:
            result: tuple[Match, Scope] = self.context.matches(scope)
            return result
        found = self.regex.match(get_route_path(scope))
        if found is None:
            return Match.NONE, {}
        params = dict(scope.get("path_params", {}))
        for key, value in found.groupdict().items():
            params[key] = self.convertors[key].convert(value)
        child = {"endpoint": self.endpoint, "path_params": params}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child
        return Match.FULL, child


def _entry(context: Any) -> _Entry:
    path = context.path_format or ""
    prefix = path.split("{", 1)[0] if path else ""
    if not isinstance(context.original_route, APIRoute):
        return _Entry(prefix, context, None)
    return _Entry(
        prefix,
        context,
        _plan(context),
        context.path_regex,
        dict(context.param_convertors),
        frozenset(context.methods or ()),
        context.endpoint,
    )


class LeanDispatchMiddleware:
    """Innermost of the app's middleware: runs eligible routes itself, passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._fastapi: FastAPI | None = None
        self._table: list[_Entry] | None = None

    def _entries(self, fastapi_app: FastAPI) -> list[_Entry]:
        if self._table is None or self._fastapi is not fastapi_app:
            table = [_entry(c) for c in iter_route_contexts(fastapi_app.routes)]
            self._table, self._fastapi = table, fastapi_app
        return self._table

    def _match(self, scope: Scope, fastapi_app: FastAPI) -> tuple[_Entry, Scope] | None:
        """The route FastAPI would pick (the first full match), when it is eligible."""
        path = scope["path"]
        for entry in self._entries(fastapi_app):
            if entry.prefix and not path.startswith(entry.prefix):
                continue
            if not entry.prefix and entry.regex is None:
                return None  # a mount or a catch-all: leave the order to FastAPI
            match, child = entry.matches(scope)
            if match is Match.FULL:
                return (entry, child) if entry.plan is not None else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fastapi_app = scope.get("app")
        if (
            scope["type"] != "http"
            or not isinstance(fastapi_app, FastAPI)
            or fastapi_app.dependency_overrides
        ):
            await self.app(scope, receive, send)
            return
        found = self._match(scope, fastapi_app)
        if found is None:
            await self.app(scope, receive, send)
            return
        entry, child = found
        assert entry.plan is not None
        scope.update(child)
        scope["route"] = entry.context.original_route
        request = Request(scope, receive)
        try:
            response = await entry.plan.run(request, child["path_params"])
        except Replay as replay:
            response = replay.response
        except TrustError as exc:
            response = await errors.trust_error_response(request, exc)
        except RequestValidationError as exc:
            response = await errors.validation_error_response(request, exc)
        except HTTPException as exc:
            response = await errors.http_error_response(request, exc)
        await response(scope, receive, send)
