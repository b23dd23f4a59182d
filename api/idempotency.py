"""``Idempotency-Key`` on POST: a repeated key gets the first answer; the work runs once.

The route's guard (``api/security.py``) claims the key after authentication,
scoped to the principal (token id, or client IP when anonymous) and the route
template; the fingerprint is a hash of method, path, query and body, so the same
key with another request is a 409. A second request that arrives while the first
is running waits for it (up to ``WAIT_SECONDS``) and replays its answer, so
concurrent retries from any worker do the work once. :class:`IdempotencyMiddleware`
stores the finished answer before the client sees it; answers of 500 and above,
and exceptions, abandon the claim so that a retry runs the work again.

Stored bodies may hold secrets (``POST /v1/tokens`` returns one), so they are
kept SM4-GCM encrypted under a key derived from the Idempotency-Key itself, and
the coordination store only sees a hash of that key: its contents alone reveal
no answer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import route_template
from trust import sm4
from trust.coordination import Coordination, IdempotencyClaim, StoredResponse
from trust.errors import BadRequest, TrustError
from trust.sm3 import hmac_sm3

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Long enough for a retry to catch a slow first attempt, short of client timeouts.
WAIT_SECONDS = 10.0
# A claim whose worker died frees the key after this; longer than any POST runs.
CLAIM_TTL = 60.0

_KEY_FORMAT = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED = {b"content-type", b"location"}
_STATE = "idempotency"

log = logging.getLogger("trust.api")


@dataclass(frozen=True)
class _Pending:
    coordination: Coordination
    claim: IdempotencyClaim
    body_key: bytes
    aad: bytes


class Replay(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the guard to answer with a stored response."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


async def begin(request: Request, coordination: Coordination, *, client: str, ttl: float) -> None:
    """Claim the request's Idempotency-Key, or raise :class:`Replay` with the stored answer."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return
    if not _KEY_FORMAT.match(key):
        raise BadRequest(f"{HEADER} must be 1 to 255 visible ASCII characters")
    body = await request.body()
    scope = f"{client}|{route_template(request.scope)}"
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    fingerprint = hashlib.sha256(
        b"\0".join([request.method.encode(), target.encode(), hashlib.sha256(body).digest()])
    ).hexdigest()
    key_id = hashlib.sha256(key.encode()).hexdigest()
    state = await run_in_threadpool(
        coordination.begin, scope, key_id, fingerprint, ttl, CLAIM_TTL, WAIT_SECONDS
    )
    body_key = hmac_sm3(key.encode(), b"trust idempotent answer\0" + scope.encode())[:16]
    aad = scope.encode()
    if state.response is not None:
        raise Replay(_replay(state.response, body_key, aad))
    assert state.claim is not None
    request.state.idempotency = _Pending(coordination, state.claim, body_key, aad)


def _replay(stored: StoredResponse, body_key: bytes, aad: bytes) -> Response:
    nonce, sealed = stored.body[:12], stored.body[12:]
    response = Response(sm4.gcm_decrypt(body_key, nonce, sealed, aad), status_code=stored.status)
    for name, value in stored.headers:
        response.headers.append(name, value)
    response.headers[REPLAYED_HEADER] = "true"
    return response


async def _replay_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    return exc.response


def install(app: FastAPI) -> None:
    app.add_exception_handler(Replay, _replay_handler)


class IdempotencyMiddleware:
    """Holds back the answer to a claimed request until it is stored (or the claim abandoned)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        settled = False

        async def hold(message: Message) -> None:
            nonlocal settled
            pending = scope.get("state", {}).get(_STATE)
            if not isinstance(pending, _Pending) or settled:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                settled = True
                await _settle(pending, held)
                for m in held:
                    await send(m)

        try:
            await self.app(scope, receive, hold)
        except BaseException:
            pending = scope.get("state", {}).get(_STATE)
            if isinstance(pending, _Pending) and not settled:
                settled = True
                await _abandon(pending)
            raise


async def _settle(pending: _Pending, messages: list[Message]) -> None:
    start = messages[0]
    status = int(start["status"])
    if status >= 500:
        await _abandon(pending)
        return
    headers = tuple(
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in start.get("headers", [])
        if k.lower() in _REPLAYED
    )
    body = b"".join(m.get("body", b"") for m in messages[1:])
    nonce = secrets.token_bytes(12)
    sealed = nonce + sm4.gcm_encrypt(pending.body_key, nonce, body, pending.aad)
    try:
        stored = await run_in_threadpool(
            pending.coordination.complete, pending.claim, StoredResponse(status, headers, sealed)
        )
    except TrustError:
        # The work is done; a lost record only means a retry may run it again.
        log.warning("could not store the answer for an idempotency key", exc_info=True)
        return
    if not stored:
        log.warning("idempotency claim expired before the answer was stored")


async def _abandon(pending: _Pending) -> None:
    try:
        await run_in_threadpool(pending.coordination.abandon, pending.claim)
    except TrustError:
        log.warning("could not abandon an idempotency claim; it expires", exc_info=True)
