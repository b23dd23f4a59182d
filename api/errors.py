"""The one place that turns errors into RFC 9457 ``application/problem+json``.

Every problem document has ``type``, ``title``, ``status``, ``detail``, ``code``
(the stable machine code of :mod:`trust.errors`), ``request_id`` and
``instance`` (the request path), plus the error's non-secret extra fields.
Anything unexpected becomes a 500 with code ``internal_error`` whose detail says
nothing about the cause; the cause is logged with the request id.
"""

from __future__ import annotations

import email.message
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from trust.errors import (
    BadRequest,
    MalformedJSON,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TrustError,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:trust:error:"

log = logging.getLogger("trust.api")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:trust:error:forbidden",
                    "title": "Not allowed",
                    "status": 403,
                    "detail": "this token may not call POST /v1/tokens",
                    "code": "forbidden",
                    "request_id": "4f1c2a9e0b7d4e55a3c1d2e3f4a5b6c7",
                    "instance": "/v1/tokens",
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    instance: str | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def request_id_of(scope: Scope) -> str | None:
    rid = scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def problem_response(
    scope: Scope, exc: TrustError, headers: Mapping[str, str] | None = None
) -> Response:
    """The problem+json response for ``exc`` in the request ``scope``."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + exc.code,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        "request_id": request_id_of(scope),
        "instance": scope.get("path"),
    }
    for key, value in exc.extra.items():
        body.setdefault(key, value)
    all_headers = dict(_headers_for(exc))
    all_headers.update(headers or {})
    return ProblemResponse(jsonable_encoder(body), status_code=exc.status, headers=all_headers)


def internal_error_response(scope: Scope) -> Response:
    return problem_response(
        scope, TrustError("internal error; quote the request id when reporting it")
    )


def _headers_for(exc: TrustError) -> dict[str, str]:
    if isinstance(exc, Unauthenticated):
        # RFC 6750: a token that was presented but is no longer good is "invalid_token".
        if exc.code == Unauthenticated.code:
            return {"WWW-Authenticate": 'Bearer realm="trust"'}
        return {"WWW-Authenticate": 'Bearer realm="trust", error="invalid_token"'}
    if isinstance(exc, RateLimited):
        retry = float(exc.extra.get("retry_after", 1))
        return {"Retry-After": str(max(1, math.ceil(retry)))}
    return {}


# --- handlers -------------------------------------------------------------------


async def trust_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TrustError)
    if exc.status >= 500:
        log.error(
            "request %s failed: %r",
            request_id_of(request.scope),
            exc,
            exc_info=exc.__cause__ is not None,
        )
    return problem_response(request.scope, exc)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only where and what: the "input" and "ctx" members may echo secrets back.
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in errors
    ]


async def validation_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(request.scope, MalformedJSON("the request body is not valid JSON"))
    body_errors = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)
    # The body limit middleware has read the body and noted its length.
    has_body = request.scope.get("state", {}).get("body_length", 0) > 0
    if body_errors and has_body and not _is_json(request.headers.get("content-type")):
        return problem_response(
            request.scope, UnsupportedMediaType("send the request body as application/json")
        )
    return problem_response(
        request.scope,
        ValidationFailed(
            "the request does not match the schema", errors=_validation_errors(errors)
        ),
    )


_HTTP_ERRORS: dict[int, type[TrustError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


async def http_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = _HTTP_ERRORS.get(exc.status_code)
    if cls is None:
        cls = BadRequest if exc.status_code < 500 else TrustError
    detail = exc.detail if isinstance(exc.detail, str) else None
    if cls is NotFound:
        detail = f"no resource at {request.url.path}"
    elif cls is MethodNotAllowed:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(request.scope, cls(detail), headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(TrustError, trust_error_response)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(StarletteHTTPException, http_error_response)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents of the given statuses."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, unknown, expired or revoked token",
    403: "The token's grants do not allow this operation",
    404: "Not found",
    409: "Conflict (e.g. an Idempotency-Key reused for another request)",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Request does not match the schema",
    429: "Rate limit exceeded; see Retry-After",
    500: "Internal error",
    503: "A dependency (database, Redis) is unavailable",
}
