"""API tokens (admin): create (the secret is shown once), list, show, revoke; and whoami."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from api.deps import AuthDep, ClockDep
from api.errors import problem_responses
from api.security import authenticated, require
from trust.auth import Grant, Principal, Role, TokenInfo

router = APIRouter(prefix="/v1", tags=["tokens"])

ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", examples=["3f9a1c0b7e42"])]

_GRANT_EXAMPLE: dict[str, Any] = {
    "role": "signer",
    "resource_type": "key",
    "resource_ids": ["K1", "K2"],
}
_TOKEN_EXAMPLE: dict[str, Any] = {
    "id": "3f9a1c0b7e42",
    "label": "invoice service",
    "grants": [_GRANT_EXAMPLE],
    "status": "active",
    "created_at": "2026-01-01T00:00:00Z",
    "created_by": "token:0a1b2c3d4e5f",
    "expires_at": "2026-01-31T00:00:00Z",
    "revoked_at": None,
    "last_used_at": None,
}


class GrantModel(BaseModel):
    """A role, optionally narrowed to named resources of one type."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_GRANT_EXAMPLE]})

    role: Role
    resource_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")] | None = Field(
        None, description="defaults to the role's (key for signer and key_admin, seal, ca)"
    )
    resource_ids: list[ResourceId] | None = Field(
        None, min_length=1, max_length=100, description="omitted: the role holds everywhere"
    )

    def to_grant(self) -> Grant:
        if self.resource_ids is None:
            return Grant(self.role, self.resource_type, None)
        return Grant.narrowed(self.role, self.resource_ids, self.resource_type)

    @classmethod
    def of(cls, grant: Grant) -> GrantModel:
        ids = sorted(grant.resource_ids) if grant.resource_ids is not None else None
        return cls(role=grant.role, resource_type=grant.resource_type, resource_ids=ids)


class CreateTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "label": "invoice service",
                    "grants": [_GRANT_EXAMPLE],
                    "expires_in_seconds": 2592000,
                }
            ]
        },
    )

    label: str = Field("", max_length=200)
    grants: list[GrantModel] = Field(min_length=1, max_length=20)
    expires_in_seconds: int | None = Field(
        None, ge=60, le=10 * 366 * 86400, description="omitted: the token never expires"
    )


class TokenModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TOKEN_EXAMPLE]})

    id: str
    label: str
    grants: list[GrantModel]
    status: Literal["active", "expired", "revoked"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, info: TokenInfo, now: datetime) -> TokenModel:
        return cls(
            id=info.id,
            label=info.label,
            grants=[GrantModel.of(g) for g in info.grants],
            status=info.status(now),
            created_at=info.created_at,
            created_by=info.created_by,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
            last_used_at=info.last_used_at,
        )


class CreatedToken(TokenModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_TOKEN_EXAMPLE, "token": "trst_3f9a1c0b7e42_" + "q" * 43},
            ]
        }
    )

    token: str = Field(description="the bearer token; shown only in this response")


class TokenList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"tokens": [_TOKEN_EXAMPLE]}]})

    tokens: list[TokenModel]


class WhoAmI(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token_id": "3f9a1c0b7e42", "label": "ops", "grants": [_GRANT_EXAMPLE]}]
        }
    )

    token_id: str
    label: str
    grants: list[GrantModel]


Admin = Annotated[Principal, require(Role.admin)]


@router.post(
    "/tokens",
    status_code=201,
    response_model=CreatedToken,
    summary="Create an API token; its secret is in this response only",
    responses=problem_responses(409),
)
async def create_token(
    body: CreateTokenRequest,
    principal: Admin,
    auth: AuthDep,
    clock: ClockDep,
    request: Request,
    response: Response,
) -> CreatedToken:
    grants = [g.to_grant() for g in body.grants]
    now = clock.now()
    expires_at = (
        now + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    )
    issued = await run_in_threadpool(
        lambda: auth.create_token(
            grants,
            actor=principal.actor,
            label=body.label,
            expires_at=expires_at,
            request_id=request.state.request_id,
        )
    )
    response.headers["Location"] = f"/v1/tokens/{issued.info.id}"
    model = TokenModel.of(issued.info, now)
    return CreatedToken(**model.model_dump(), token=issued.token)


@router.get("/tokens", response_model=TokenList, summary="List API tokens (never their secrets)")
async def list_tokens(_: Admin, auth: AuthDep, clock: ClockDep) -> TokenList:
    infos = await run_in_threadpool(auth.list_tokens)
    now = clock.now()
    return TokenList(tokens=[TokenModel.of(i, now) for i in infos])


@router.get(
    "/tokens/{token_id}",
    response_model=TokenModel,
    summary="Show one API token",
    responses=problem_responses(404),
)
async def get_token(token_id: TokenId, _: Admin, auth: AuthDep, clock: ClockDep) -> TokenModel:
    info = await run_in_threadpool(auth.get_token, token_id)
    return TokenModel.of(info, clock.now())


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenModel,
    summary="Revoke an API token (revoking twice is not an error)",
    responses=problem_responses(404),
)
async def revoke_token(
    token_id: TokenId, principal: Admin, auth: AuthDep, clock: ClockDep, request: Request
) -> TokenModel:
    info = await run_in_threadpool(
        lambda: auth.revoke(token_id, actor=principal.actor, request_id=request.state.request_id)
    )
    return TokenModel.of(info, clock.now())


@router.get("/whoami", response_model=WhoAmI, summary="The calling token's id and grants")
async def whoami(principal: Annotated[Principal, authenticated()]) -> WhoAmI:
    return WhoAmI(
        token_id=principal.token_id,
        label=principal.label,
        grants=[GrantModel.of(g) for g in principal.grants],
    )
