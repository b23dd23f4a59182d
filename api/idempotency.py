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

Answers larger than ``idempotency_max_inline_bytes`` (a stamped document may be
50 MB) are not put into the coordination store (Redis keeps everything in memory):
their sealed body goes to the database table ``api_idempotency_answer`` under a
random reference, which the coordination entry holds instead, for the same TTL. A
retry so still gets the first answer byte for byte (a second stamp would be another
document with another signing time); expired rows are deleted as new ones are stored.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Column, LargeBinary, String, Table, delete, insert, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import route_template
from trust import sm4
from trust.coordination import Coordination, IdempotencyClaim, StoredResponse
from trust.db import Database, UTCDateTime, metadata
from trust.errors import BadRequest, IdempotencyConflict, TrustError
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
# A stored answer whose body is in the database names its row in this pseudo-header
# (never replayed: only _REPLAYED headers are stored besides it).
_REF = "x-trust-answer-ref"
_CHUNK = 1 << 20

answers = Table(
    "api_idempotency_answer",
    metadata,
    Column("ref", String(32), primary_key=True),
    Column("body", LargeBinary, nullable=False),  # nonce + SM4-GCM, as in the coordination store
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

log = logging.getLogger("trust.api")


@dataclass(frozen=True)
class AnswerStore:
    """Where answers over ``max_inline`` bytes go: the service's database."""

    database: Database
    max_inline: int
    now: datetime  # the request's time, on the service clock
    ttl: timedelta

    def put(self, sealed: bytes) -> str:
        ref = secrets.token_hex(16)
        with self.database.session() as session:
            session.execute(delete(answers).where(answers.c.expires_at < self.now))
            session.execute(
                insert(answers).values(ref=ref, body=sealed, expires_at=self.now + self.ttl)
            )
        return ref

    def get(self, ref: str) -> bytes:
        with self.database.session() as session:
            body = session.execute(select(answers.c.body).where(answers.c.ref == ref)).scalar()
        if body is None:
            raise IdempotencyConflict(
                "the first answer to this Idempotency-Key is no longer stored",
                reason="answer_expired",
            )
        return bytes(body)


@dataclass(frozen=True)
class _Pending:
    coordination: Coordination
    claim: IdempotencyClaim
    body_key: bytes
    aad: bytes
    store: AnswerStore


class Replay(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the guard to answer with a stored response."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


async def begin(request: Request, coordination: Coordination, *, client: str, ttl: float) -> None:
    """Claim the request's Idempotency-Key, or raise :class:`Replay` with the stored answer.

    The database and the inline cap come from the app's services."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return
    if not _KEY_FORMAT.match(key):
        raise BadRequest(f"{HEADER} must be 1 to 255 visible ASCII characters")
    scope = f"{client}|{route_template(request.scope)}"
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    fingerprint = hashlib.sha256(
        b"\0".join([request.method.encode(), target.encode(), await _body_digest(request)])
    ).hexdigest()
    key_id = hashlib.sha256(key.encode()).hexdigest()
    state = await run_in_threadpool(
        coordination.begin, scope, key_id, fingerprint, ttl, CLAIM_TTL, WAIT_SECONDS
    )
    body_key = hmac_sm3(key.encode(), b"trust idempotent answer\0" + scope.encode())[:16]
    aad = scope.encode()
    services = request.app.state.services
    store = AnswerStore(
        services.database,
        services.settings.idempotency_max_inline_bytes,
        services.clock.now(),
        timedelta(seconds=ttl),
    )
    if state.response is not None:
        raise Replay(await run_in_threadpool(_replay, state.response, body_key, aad, store))
    assert state.claim is not None
    request.state.idempotency = _Pending(coordination, state.claim, body_key, aad, store)


async def _body_digest(request: Request) -> bytes:
    """SHA-256 of the body; of the parsed form when the guard has read one (a multipart
    upload naming its resource in a field), which leaves no body to read again."""
    try:
        return hashlib.sha256(await request.body()).digest()
    except RuntimeError:  # "Stream consumed": Starlette keeps only the parsed form
        pass
    digest = hashlib.sha256()
    for name, value in (await request.form()).multi_items():
        digest.update(hashlib.sha256(name.encode()).digest())
        if isinstance(value, str):
            digest.update(b"s" + hashlib.sha256(value.encode()).digest())
            continue
        part = hashlib.sha256(f"{value.filename}\0{value.content_type}".encode())
        while chunk := await value.read(_CHUNK):
            part.update(chunk)
        await value.seek(0)  # the route reads the same upload
        digest.update(b"f" + part.digest())
    return digest.digest()


def _replay(stored: StoredResponse, body_key: bytes, aad: bytes, store: AnswerStore) -> Response:
    refs = [value for name, value in stored.headers if name == _REF]
    body = store.get(refs[0]) if refs else stored.body
    nonce, sealed = body[:12], body[12:]
    response = Response(sm4.gcm_decrypt(body_key, nonce, sealed, aad), status_code=stored.status)
    for name, value in stored.headers:
        if name != _REF:
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
        if len(body) > pending.store.max_inline:
            ref = await run_in_threadpool(pending.store.put, sealed)
            headers, sealed = (*headers, (_REF, ref)), b""
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
