"""The app factory: builds the FastAPI application from a Settings object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from api import errors, idempotency
from api.deps import build_services
from api.idempotency import IdempotencyMiddleware
from api.lean import LeanDispatchMiddleware
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from api.openapi import install_openapi
from api.routers import (
    algorithms,
    ca,
    documents,
    keys,
    operations,
    seals,
    signers,
    tokens,
    tsa,
    verify,
)
from keystore import KeyStore
from trust import migrations
from trust.auth import AuditSink, AuthService
from trust.clock import Clock
from trust.coordination import Coordination
from trust.db import Database
from trust.errors import TrustError
from trust.keys import configure_sm2_backend
from trust.settings import Settings, get_settings

log = logging.getLogger("trust.api")


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    coordination: Coordination | None = None,
    audit: AuditSink | None = None,
    auth: AuthService | None = None,
    keystore: KeyStore | None = None,
) -> FastAPI:
    """The application; any service passed in is used as is (and not closed on shutdown)."""
    settings = settings or get_settings()
    services = build_services(
        settings,
        database=database,
        clock=clock,
        coordination=coordination,
        audit=audit,
        auth=auth,
        keystore=keystore,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(migrations.check_current, services.database)
            # Process-wide and once: which SM2 engine keys use when a call names none.
            configure_sm2_backend(settings.sm2_backend, settings.libcrypto_path)
            # Built now so that a missing or unreadable master key stops the start.
            await run_in_threadpool(services.keystore)
        except TrustError as exc:
            log.error("refusing to start: %s", exc.detail)
            raise
        yield
        services.close()

    app = FastAPI(
        title="Trust service",
        version="0.1.0",
        description=(
            "Identity certificates, electronic seals and trusted timestamps with the "
            "SM2/SM3/SM4 national algorithms. Errors are RFC 9457 problem documents "
            "(application/problem+json) with a stable `code`."
        ),
        lifespan=lifespan,
        middleware=[
            # Outermost first: every response, even a 413 or a 500, gets a request id.
            Middleware(RequestContextMiddleware, log_requests=settings.access_log),
            Middleware(
                BodyLimitMiddleware,
                max_body_bytes=settings.max_body_bytes,
                path_limits={"/v1/documents/": settings.document_max_bytes},
            ),
            Middleware(IdempotencyMiddleware),
            # Innermost: runs the simply declared routes without FastAPI's generic path.
            Middleware(LeanDispatchMiddleware),
        ],
    )
    app.state.settings = settings
    app.state.services = services
    errors.install(app)
    idempotency.install(app)
    app.include_router(operations.router)
    app.include_router(tokens.router)
    app.include_router(algorithms.router)
    app.include_router(keys.router)
    app.include_router(ca.router)
    app.include_router(verify.router)
    app.include_router(documents.router)
    app.include_router(tsa.router)
    app.include_router(signers.router)
    app.include_router(seals.router)
    install_openapi(app, settings)
    return app
