"""Time-stamp authority (RFC 3161 / GM/T 0033) over HTTP.

``POST /tsa`` and ``POST /tsa/{unit}`` speak RFC 3161 §3.4 (``application/timestamp-query``
in, ``application/timestamp-reply`` out, public, rate-limited per client like every
public route). A request the TSA refuses, malformed DER included, is answered with a
200 TimeStampResp whose failInfo says why, as RFC 3161 clients expect; only transport
problems are problem+json (415 for another content type, 404 for an unknown unit).

JSON: ``POST /v1/timestamps`` (role ``signer`` or ``admin``) issues a token over a
digest; ``GET /v1/timestamps/{serial_hex}`` (``auditor``, ``verifier`` or ``admin``)
returns the record of an issued token; ``GET /v1/tsa/units`` (public) lists the units
with their certificate chains; ``POST /v1/tsa/units/{unit}/rotate`` (``admin`` or
``key_admin``) gives a unit a new key and certificate.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from asn1crypto import x509
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.deps import Services, TsaDep, get_services
from api.errors import problem_responses
from api.routers.keys import Base64
from api.security import public, require
from timestamp.registry import UnitRecord
from trust.auth import Principal, Role
from trust.errors import UnsupportedMediaType
from trust.keys import load_public_key

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"

router = APIRouter(tags=["timestamps"])

UnitName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- models -------------------------------------------------------------------------

# Examples (the token cut short).
_TST_B64 = "MIIKkgYJKoZIhvcNAQcCoIIKgzCCCn8CAQMxDDAKBggqgRzPVQGDETCByQYLKoZIhvcNAQkQ..."
_SERIAL = "53d0dd7ef25ade8a0f018796793c7f13"
_DIGEST = "96h6GVsMwAUrnVmEgiEs6wfk6mDo0Tml3+/zbCSr8rM="
_GEN_TIME = "2026-11-22T01:20:38.712118Z"


class TimestampBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "digest_b64": _DIGEST,
                    "hash_algorithm": "sm3",
                    "unit": "sm2",
                }
            ]
        },
    )

    digest_b64: Base64
    hash_algorithm: str = Field(max_length=16, description="sm3, sha256, sha384 or sha512")
    unit: str | None = Field(None, max_length=64, description="default: the default unit")


class TimestampIssued(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token_b64": _TST_B64,
                    "gen_time": _GEN_TIME,
                    "serial_hex": _SERIAL,
                    "unit": "sm2",
                    "policy": "2.999.1.1",
                }
            ]
        }
    )

    token_b64: str = Field(description="DER TimeStampToken (CMS ContentInfo)")
    gen_time: datetime
    serial_hex: str
    unit: str
    policy: str


class TimestampRecord(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial_hex": _SERIAL,
                    "unit": "sm2",
                    "gen_time": _GEN_TIME,
                    "policy": "2.999.1.1",
                    "hash_algorithm": "sm3",
                    "digest_b64": _DIGEST,
                    "token_b64": _TST_B64,
                }
            ]
        }
    )

    serial_hex: str
    unit: str
    gen_time: datetime
    policy: str
    hash_algorithm: str
    digest_b64: str
    token_b64: str


_UNIT_EXAMPLE: dict[str, JsonValue] = {
    "name": "sm2",
    "generation": 2,
    "state": "active",
    "algorithm": "sm2",
    "policy": "2.999.1.1",
    "accuracy_ms": 1000.0,
    "certificate_serial_hex": "2d66e95c927a5da294d0a06528e36a37",
    "not_after": "2027-11-22T01:12:22Z",
    "chain_pem": "-----BEGIN CERTIFICATE-----\n"
    "MIIC5TCCAougAwIBAgIQLWbpXJJ6XaKU0KBlKONqNzAKBggqgRzPVQGDdTBMMQsw\n"
    "...\n-----END CERTIFICATE-----\n(issuing CA, root)",
    "created_at": "2026-11-22T01:12:22Z",
    "retired_at": None,
}


class UnitModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_UNIT_EXAMPLE]})

    name: str
    generation: int
    state: str = Field(description="active, or retired (rotated away; its tokens still verify)")
    algorithm: str
    policy: str
    accuracy_ms: float
    certificate_serial_hex: str
    not_after: datetime
    chain_pem: str = Field(description="unit certificate, issuing CA, root")
    created_at: datetime
    retired_at: datetime | None

    @classmethod
    def of(cls, record: UnitRecord) -> UnitModel:
        cert = x509.Certificate.load(record.certificate)
        return cls(
            name=record.name,
            generation=record.generation,
            state=record.state,
            algorithm=load_public_key(cert.public_key.dump()).algorithm.value,
            policy=record.policy,
            accuracy_ms=record.accuracy.total_seconds() * 1000,
            certificate_serial_hex=format(cert.serial_number, "x"),
            not_after=cert.not_valid_after,
            chain_pem=record.chain_pem,
            created_at=record.created_at,
            retired_at=record.retired_at,
        )


class UnitList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"default_unit": "sm2", "units": [_UNIT_EXAMPLE]}]}
    )

    default_unit: str
    units: list[UnitModel]


# --- RFC 3161 over HTTP ---------------------------------------------------------------


def _binary(what: str) -> dict[str, Any]:
    return {"schema": {"type": "string", "format": "binary"}, "example": f"<{what}, DER>"}


_RFC3161: dict[str, Any] = {
    "dependencies": [public()],
    "response_class": Response,
    "openapi_extra": {
        "requestBody": {"required": True, "content": {TIMESTAMP_QUERY: _binary("TimeStampReq")}}
    },
    "responses": {
        200: {
            "description": "a TimeStampResp: granted with a token, or a rejection whose "
            "failInfo says why (badAlg, badDataFormat, unacceptedPolicy, "
            "unacceptedExtension, timeNotAvailable, systemFailure)",
            "content": {TIMESTAMP_REPLY: _binary("TimeStampResp")},
        },
        **problem_responses(404, 413, 415, 429),
    },
}


async def _reply(request: Request, tsa: TsaDep, unit: str | None) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != TIMESTAMP_QUERY:
        raise UnsupportedMediaType(f"send the time-stamp request as {TIMESTAMP_QUERY}")
    der = await request.body()
    return Response(await run_in_threadpool(tsa.respond, der, unit), media_type=TIMESTAMP_REPLY)


@router.post("/tsa", summary="RFC 3161 time-stamp request to the default unit", **_RFC3161)
async def timestamp_default(request: Request, tsa: TsaDep) -> Response:
    return await _reply(request, tsa, None)


@router.post("/tsa/{unit}", summary="RFC 3161 time-stamp request to a named unit", **_RFC3161)
async def timestamp_unit(unit: UnitName, request: Request, tsa: TsaDep) -> Response:
    return await _reply(request, tsa, unit)


# --- JSON -----------------------------------------------------------------------------


@router.post(
    "/v1/timestamps",
    summary="Issue a time-stamp token over a digest",
    response_model=TimestampIssued,
    responses=problem_responses(400, 401, 403, 404, 422, 429, 503),
)
async def issue_timestamp(
    body: TimestampBody,
    tsa: TsaDep,
    _: Annotated[Principal, require(Role.signer, Role.admin)],
) -> TimestampIssued:
    issued = await run_in_threadpool(
        tsa.issue, body.hash_algorithm, body.digest_b64, unit=body.unit
    )
    return TimestampIssued(
        token_b64=_b64(issued.token),
        gen_time=issued.gen_time,
        serial_hex=issued.serial_hex,
        unit=issued.unit,
        policy=issued.policy,
    )


@router.get(
    "/v1/timestamps/{serial_hex}",
    summary="The record of an issued time-stamp token",
    response_model=TimestampRecord,
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def get_timestamp(
    serial_hex: Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{1,40}$")],
    tsa: TsaDep,
    _: Annotated[Principal, require(Role.auditor, Role.verifier, Role.admin)],
) -> TimestampRecord:
    record = await run_in_threadpool(tsa.get, serial_hex)
    return TimestampRecord(
        serial_hex=record.serial_hex,
        unit=record.unit,
        gen_time=record.gen_time,
        policy=record.policy,
        hash_algorithm=record.hash_algorithm,
        digest_b64=_b64(record.imprint),
        token_b64=_b64(record.token),
    )


@router.get(
    "/v1/tsa/units",
    summary="TSA units with their certificate chains (PEM)",
    dependencies=[public()],
    response_model=UnitList,
    responses=problem_responses(429),
)
async def list_units(
    request: Request,
    include_retired: Annotated[
        bool, Query(description="also list rotated-away generations (to verify old tokens)")
    ] = False,
) -> UnitList:
    services: Services = get_services(request)
    registry = services.tsa_units()
    records = await run_in_threadpool(registry.store.list, include_retired=include_retired)
    return UnitList(
        default_unit=services.settings.tsa_default_unit,
        units=[UnitModel.of(r) for r in records],
    )


@router.post(
    "/v1/tsa/units/{unit}/rotate",
    summary="New key and certificate for a unit; tokens issued before keep verifying",
    response_model=UnitModel,
    responses=problem_responses(401, 403, 404, 409, 429),
)
async def rotate_unit(
    unit: UnitName,
    request: Request,
    principal: Annotated[Principal, require(Role.admin, Role.key_admin)],
) -> UnitModel:
    services: Services = get_services(request)
    record = await run_in_threadpool(services.tsa_units().rotate, unit, actor=principal.actor)
    # This worker serves the new generation at once; others within tsa_unit_refresh_seconds.
    await run_in_threadpool(services.tsa().reload_units)
    return UnitModel.of(record)
