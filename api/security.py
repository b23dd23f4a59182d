"""Authorisation rules: each route declares its rule once, as a dependency.

``require(Role.signer, resource=Resource("key", path_param="key_id"))``,
``public_if("public_verify", Role.verifier)``, ``public()`` and ``operations()``
build a :class:`Guard`, which every route must carry exactly once (a test walks
``app.routes`` and fails on a route without one). The guard, in order:

1. authenticates the bearer token, if any (a bad token is a 401 even on a
   public route: the client should learn its token is no good);
2. counts the request against the client's rate limit: the token id once the
   token is verified, else the client IP (failed authentications count against
   the IP, which bounds guessing); keying by a verified id means nobody can
   spend another client's allowance by sending its token id;
3. checks the rule: roles, and for narrowed grants the named resource;
4. claims the Idempotency-Key of a POST (``api/idempotency.py``), scoped to
   the same client, so that only an authorised request can claim or replay one.

``operations()`` routes (health, readiness, metrics) skip all of it: probes must
work without tokens and must not be throttled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from api import idempotency
from api.deps import Services, get_services
from api.middleware import route_template
from trust.auth import Principal, Role
from trust.coordination.memory import MemoryCoordination
from trust.errors import Forbidden, RateLimited, Unauthenticated
from trust.settings import Settings


@dataclass(frozen=True)
class Resource:
    """Where a route names the resource it acts on: a path parameter, a JSON body field or
    a form field (multipart uploads)."""

    type: str
    path_param: str | None = None
    body_field: str | None = None
    form_field: str | None = None

    def __post_init__(self) -> None:
        named = (self.path_param, self.body_field, self.form_field)
        if sum(n is not None for n in named) != 1:
            raise ValueError("name exactly one of path_param, body_field and form_field")


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role] = frozenset()
    public: bool = False
    # A boolean setting that, when true, makes the route public (e.g. public_verify).
    public_setting: str | None = None
    resource: Resource | None = None
    operations: bool = False

    def is_public(self, settings: Settings) -> bool:
        if self.public or self.operations:
            return True
        return self.public_setting is not None and bool(getattr(settings, self.public_setting))


class Guard:
    """The dependency that enforces a :class:`Rule`; returns the principal, if any."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    async def __call__(self, request: Request) -> Principal | None:
        if self.rule.operations:
            return None
        services = get_services(request)
        ip = request.client.host if request.client else "unknown"
        principal: Principal | None = None
        bearer = _bearer(request)
        if bearer is not None:
            try:
                # A token verified within the last second is checked in memory (hash and
                # expiry); anything else reads the database, off the event loop.
                principal = services.auth.authenticate_cached(bearer)
                if principal is None:
                    principal = await run_in_threadpool(services.auth.authenticate, bearer)
            except Unauthenticated:
                await _limit(services, f"ip:{ip}")
                raise
            request.state.principal_id = principal.token_id
        client = principal.actor if principal else f"ip:{ip}"
        await _limit(services, client)
        if not self.rule.is_public(services.settings):
            if principal is None:
                raise Unauthenticated("this operation needs a bearer token")
            await self._authorise(request, principal)
        await idempotency.begin(
            request,
            services.coordination,
            client=client,
            ttl=services.settings.idempotency_ttl_seconds,
        )
        return principal

    async def _authorise(self, request: Request, principal: Principal) -> None:
        rtype = rid = None
        if self.rule.resource is not None:
            rtype = self.rule.resource.type
            rid = await _resource_id(request, self.rule.resource)
        if not principal.allows(self.rule.roles, rtype, rid):
            what = f"{request.method} {route_template(request.scope)}"
            on = f" on {rtype} {rid!r}" if rid is not None else ""
            raise Forbidden(f"this token may not call {what}{on}")


class RoleGuard(Guard):
    """A guard of a non-public rule: the principal is always there."""

    async def __call__(self, request: Request) -> Principal:
        principal = await super().__call__(request)
        assert principal is not None
        return principal


def require(*roles: Role, resource: Resource | None = None) -> Any:
    """Only tokens holding one of ``roles`` (on ``resource``, for narrowed grants)."""
    if not roles:
        raise ValueError("name at least one role")
    return Depends(RoleGuard(Rule(frozenset(roles), resource=resource)))


def authenticated() -> Any:
    """Any valid token, whatever its roles."""
    return require(*Role)


def public_if(setting: str, *roles: Role, resource: Resource | None = None) -> Any:
    """Public while the boolean ``setting`` is true, else like ``require(*roles)``."""
    if setting not in Settings.model_fields:
        raise ValueError(f"no setting {setting!r}")
    return Depends(Guard(Rule(frozenset(roles), public_setting=setting, resource=resource)))


def public() -> Any:
    """Anyone; a token, if sent, must still be valid. Rate limited."""
    return Depends(Guard(Rule(public=True)))


def operations() -> Any:
    """Health, readiness and metrics: no token, no rate limit."""
    return Depends(Guard(Rule(operations=True)))


def api_routes(app: FastAPI) -> list[RouteContext]:
    """The app's API routes as served (full paths, router-level dependencies included)."""
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def rules_of(route: RouteContext) -> list[Rule]:
    """The rule of each guard in ``route``'s dependencies.

    Counted per guard instance: FastAPI runs one instance once however often it
    is declared, but two instances both run (and both count against the rate
    limit), so a route must carry exactly one.
    """
    guards: list[Guard] = []

    def walk(dependant: Dependant) -> None:
        call = dependant.call
        if isinstance(call, Guard) and all(call is not g for g in guards):
            guards.append(call)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return [g.rule for g in guards]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("use Authorization: Bearer <token>")
    return value.strip()


async def _limit(services: Services, client: str) -> None:
    settings = services.settings
    args = (f"ratelimit:{client}", settings.rate_limit_requests, settings.rate_limit_window_seconds)
    if isinstance(services.coordination, MemoryCoordination):
        # In-process counting never blocks: a thread-pool hop would cost more than the count.
        decision = services.coordination.hit(*args)
    else:
        decision = await run_in_threadpool(services.coordination.hit, *args)
    if not decision.allowed:
        raise RateLimited(
            f"more than {settings.rate_limit_requests} requests in "
            f"{settings.rate_limit_window_seconds:g} s",
            retry_after=round(decision.retry_after, 3),
        )


async def _resource_id(request: Request, resource: Resource) -> str | None:
    if resource.path_param is not None:
        value = request.path_params.get(resource.path_param)
        return value if isinstance(value, str) else None
    if resource.form_field is not None:
        # Starlette keeps the parsed form on the request: the route reads the same one.
        try:
            form = await request.form()
        except (AssertionError, ValueError, HTTPException):
            return None  # not a form: the route's validation answers for the body
        value = form.get(resource.form_field)
        return value if isinstance(value, str) else None
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        return None  # schema validation answers for the body; no resource, no narrowed grant
    value = body.get(resource.body_field) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
