"""ASGI middleware: request context (id, access log, metrics, last-resort 500) and body limit.

Plain ASGI rather than ``BaseHTTPMiddleware`` so that bodies stream through
untouched and exceptions reach the outermost layer unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.errors import internal_error_response, problem_response
from trust.errors import BadRequest, PayloadTooLarge

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed only when it cannot smuggle anything into logs or headers.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

access_log = logging.getLogger("trust.access")
log = logging.getLogger("trust.api")


def route_template(scope: Scope) -> str:
    """The matched route's full path template (a bounded label set), or ``<unmatched>``.

    FastAPI puts the route as declared in the scope; a router included with a
    prefix leaves the prefix out, so the full template comes from the app's
    effective routes, mapped once per app.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    state = getattr(scope.get("app"), "state", None)
    if state is None:
        return path
    table: dict[int, str] | None = getattr(state, "route_templates", None)
    if table is None or id(route) not in table:
        table = {
            id(c.original_route): c.path_format
            for c in iter_route_contexts(scope["app"].routes)
            if c.path_format
        }
        table.setdefault(id(route), path)
        state.route_templates = table
    return table[id(route)]


class RequestContextMiddleware:
    """Outermost layer: assigns the request id, times the request, logs and counts it.

    Also the last resort for unexpected exceptions: the client gets a 500 problem
    that says nothing about the cause, the log gets the traceback with the id.
    """

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        sent = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = sent if sent and _SANE_REQUEST_ID.match(sent) else uuid.uuid4().hex
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if response_started:
                raise  # too late for a problem document; the server drops the connection
            await internal_error_response(scope)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            metrics.observe_request(scope["method"], route, status, elapsed)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps(_access_record(scope, route, status, elapsed)))


def _access_record(scope: Scope, route: str, status: int, elapsed: float) -> dict[str, Any]:
    state = scope.get("state", {})
    client = scope.get("client")
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": state.get("request_id"),
        "method": scope["method"],
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": client[0] if client else None,
        "principal": state.get("principal_id"),
    }


class BodyLimitMiddleware:
    """Reads the request body up front and refuses it past ``max_body_bytes`` with a 413.

    A declared Content-Length over the limit is refused before reading; a chunked
    body is counted as it arrives. The body is then replayed to the application,
    which reads it from memory (FastAPI buffers it anyway). ``path_limits`` gives
    routes under a path prefix their own limit (document uploads are far larger
    than any JSON body).
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.path_limits = dict(path_limits or {})

    def _limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        for prefix, limit in self.path_limits.items():
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem_response(scope, BadRequest("invalid Content-Length"))(
                    scope, receive, send
                )
                return
            if int(declared) > limit:
                await self._too_large(scope, receive, send, limit)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-body; nobody to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                await self._too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope.setdefault("state", {})["body_length"] = len(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        exc = PayloadTooLarge(f"request body exceeds {limit} bytes")
        # The rest of the body is left unread, so the connection cannot be reused.
        await problem_response(scope, exc, headers={"Connection": "close"})(scope, receive, send)
