"""Electronic seals: the GB/T 33481 lifecycle (``seal_officer``), stamping (``signer``
with a grant on the seal, and on the signer when narrowed to signers), verification
(public while ``public_verify``, else ``verifier``) and the public status check (查验).

The lifecycle routes name the seal by its esID. A stamp answers the SES_Signature DER;
verification answers a report of every check, performed or not, in the standard's order.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool

from api.deps import ClockDep, SealsDep, SealVerifierDep
from api.errors import problem_responses
from api.routers.keys import Base64
from api.routers.verify import WithRevocation
from api.security import Resource, public, public_if, require
from keystore import Actor
from seals.registry import SealRecord, StatusChange
from seals.service import ApplyRequest, RevocationInput, StampRequest, StatusAnswer
from seals.verify import VerificationResult
from trust.auth import Principal, Role
from trust.errors import Forbidden, SealStateConflict, ValidationFailed
from trust.validation.certs import load_certificates

router = APIRouter(prefix="/v1", tags=["seals"])

_SEAL = Resource("seal", path_param="esid")
Officer = Annotated[Principal, require(Role.seal_officer)]
SealOfficer = Annotated[Principal, require(Role.seal_officer, resource=_SEAL)]
Reader = Annotated[Principal, require(Role.seal_officer, Role.signer, resource=_SEAL)]
Stamper = Annotated[Principal, require(Role.signer, resource=_SEAL)]

EsidPath = Annotated[str, Path(pattern=r"^[0-9A-Za-z._-]{1,64}$", examples=["11010000000001"])]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# A 1x1 PNG.
_EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
_ESID = "11010000000001"
_TIME = "2026-03-01T08:00:00Z"
_SEAL_EXAMPLE: dict[str, Any] = {
    "esid": _ESID,
    "type": "contract",
    "type_code": 4,
    "name": "某某单位合同专用章",
    "organization": "某某单位",
    "image_type": "PNG",
    "width_mm": 40,
    "height_mm": 40,
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_to": "2028-01-01T00:00:00Z",
    "cert_list_type": "certificates",
    "signers": 1,
    "applicant": "token:3f2a9c1b7d4e",
    "approvals": ["token:8b1c2d3e4f5a"],
    "status": "active",
    "status_now": "active",
    "made": True,
    "maker_certificate_serial": "5c1e0f9d4a1f9c0e7d2b6a38",
    "created_at": _TIME,
    "updated_at": _TIME,
}
_MAX_STATUS_CACHE = 86400  # a past instant's status never changes
_NOW_STATUS_CACHE = 10


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- models -------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApplyBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "esid": "11010000000001",
                    "type": "contract",
                    "name": "某某单位合同专用章",
                    "organization": "某某单位",
                    "image_b64": _EXAMPLE_PNG,
                    "image_type": "PNG",
                    "width_mm": 40,
                    "height_mm": 40,
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_to": "2028-01-01T00:00:00Z",
                    "signer_certificate_sm3_b64": ["q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k="],
                }
            ]
        }
    )
    esid: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._-]{1,64}$")] | None = Field(
        None, description="the seal's id; default a random UUID in hex"
    )
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="official, finance, invoice, contract, business, personal (configurable)"
    )
    name: Text
    organization: Text
    image_b64: Base64 = Field(description="the seal picture, PNG or SVG")
    image_type: Literal["PNG", "SVG", "png", "svg"]
    width_mm: int = Field(ge=1, le=500)
    height_mm: int = Field(ge=1, le=500)
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    signer_certificates_pem: list[Annotated[str, StringConstraints(max_length=65536)]] = Field(
        default_factory=list, max_length=100, description="certListType 1: the certificates"
    )
    signer_certificate_sm3_b64: list[Base64] = Field(
        default_factory=list, max_length=100, description="certListType 2: SM3 of each DER"
    )

    def request(self) -> ApplyRequest:
        certs = []
        for text in self.signer_certificates_pem:
            found = load_certificates(text.encode())
            if len(found) != 1:
                raise ValidationFailed("each signer certificate entry holds one certificate")
            certs.append(found[0].dump())
        return ApplyRequest(
            seal_type=self.type,
            name=self.name,
            organization=self.organization,
            picture=self.image_b64,
            picture_type=self.image_type,
            width_mm=self.width_mm,
            height_mm=self.height_mm,
            valid_start=self.valid_from,
            valid_end=self.valid_to,
            signer_certificates=tuple(certs),
            signer_certificate_sm3=tuple(self.signer_certificate_sm3_b64),
            esid=self.esid,
        )


class ReasonBody(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "印章保管人离岗"}]})

    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class SealModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SEAL_EXAMPLE]})

    esid: str
    type: str
    type_code: int
    name: str
    organization: str
    image_type: str
    width_mm: int
    height_mm: int
    valid_from: datetime
    valid_to: datetime
    cert_list_type: Literal["certificates", "digests"]
    signers: int = Field(description="how many signer certificates (or digests) are listed")
    applicant: str
    approvals: list[str]
    status: str = Field(description="as last recorded: applied, approved, made, active, ...")
    status_now: str = Field(description="with validity applied: made becomes active, expired")
    made: bool
    maker_certificate_serial: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: SealRecord, now: datetime) -> SealModel:
        return cls(
            esid=record.esid,
            type=record.type_name,
            type_code=record.type_code,
            name=record.name,
            organization=record.organization,
            image_type=record.picture_type,
            width_mm=record.width_mm,
            height_mm=record.height_mm,
            valid_from=record.valid_start,
            valid_to=record.valid_end,
            cert_list_type=record.cert_list_kind.value,
            signers=len(record.signers),
            applicant=record.applicant,
            approvals=list(record.approvals),
            status=record.status.value,
            status_now=record.effective_status(now).value,
            made=record.eseal is not None,
            maker_certificate_serial=record.maker_serial,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class SealList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_SEAL_EXAMPLE], "next_offset": None}]}
    )

    items: list[SealModel]
    next_offset: int | None


class StatusChangeModel(BaseModel):
    seq: int
    status: str
    at: datetime
    actor: str
    reason: str | None

    @classmethod
    def of(cls, change: StatusChange) -> StatusChangeModel:
        return cls(
            seq=change.seq,
            status=change.status.value,
            at=change.at,
            actor=change.actor,
            reason=change.reason,
        )


class HistoryModel(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "esid": _ESID,
                    "history": [
                        {
                            "seq": 1,
                            "status": "applied",
                            "at": _TIME,
                            "actor": "token:3f2a9c1b7d4e",
                            "reason": None,
                        },
                        {
                            "seq": 2,
                            "status": "approved",
                            "at": _TIME,
                            "actor": "token:8b1c2d3e4f5a",
                            "reason": None,
                        },
                    ],
                }
            ]
        }
    )

    esid: str
    history: list[StatusChangeModel]


class StatusModel(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "esid": _ESID,
                    "at": _TIME,
                    "status": "active",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_to": "2028-01-01T00:00:00Z",
                }
            ]
        }
    )

    esid: str
    at: datetime
    status: str | None = Field(description="null: the seal had not been applied for then")
    valid_from: datetime
    valid_to: datetime

    @classmethod
    def of(cls, answer: StatusAnswer) -> StatusModel:
        return cls(
            esid=answer.esid,
            at=answer.at,
            status=None if answer.status is None else answer.status.value,
            valid_from=answer.valid_start,
            valid_to=answer.valid_end,
        )


class _DataInput(_Request):
    data_b64: Base64 | None = None
    sm3_b64: Base64 | None = Field(None, description="SM3 of the data, 32 bytes")

    @model_validator(mode="after")
    def _one_input(self) -> Any:
        if (self.data_b64 is None) == (self.sm3_b64 is None):
            raise ValueError("give data_b64 or sm3_b64, exactly one")
        return self


def _revocation(body: WithRevocation) -> RevocationInput:
    return RevocationInput(
        tuple(body.crls_b64), tuple(body.ocsp_responses_b64), body.revocation_mode
    )


class StampBody(_DataInput, WithRevocation):
    """``crls_b64``, ``ocsp_responses_b64`` and ``revocation_mode`` apply to a signer whose
    certificate another CA issued (the service's own come from its CA's records): a
    revoked one is refused, one whose status the data does not answer is refused in
    ``hard-fail`` and ``require`` modes and stamped in ``soft-fail`` (the answer says so)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signer": "sgn_4b1e0c9a7d3f2e6b8a5c1d0f",
                    "data_b64": "PFNpZ25hdHVyZS8+",
                    "property_info": "/Doc_0/Signs/Sign_0/Signature.xml",
                    "timestamp": False,
                }
            ]
        }
    )
    signer: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="the signer (registry id) whose certificate the seal lists"
    )
    property_info: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="TBS_Sign.propertyInfo: what the stamp protects (printable ASCII)"
    )
    timestamp: bool = Field(False, description="add a timestamp from the service's TSA")


class StampResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signature_b64": "MIIK...",
                    "esid": _ESID,
                    "signer": "sgn_4b1e0c9a7d3f2e6b8a5c1d0f",
                    "signing_time": _TIME,
                    "timestamped": False,
                    "signer_revocation": "good",
                    "signer_revocation_source": "CA records",
                }
            ]
        }
    )

    signature_b64: str = Field(description="DER SES_Signature (GB/T 38540 v4)")
    esid: str
    signer: str
    signing_time: datetime
    timestamped: bool
    signer_revocation: Literal["good", "unknown"] = Field(
        description="the signer certificate's revocation status when stamped"
    )
    signer_revocation_source: str = Field(
        description="CA records, CRL or OCSP; for unknown, why it could not be checked"
    )


class VerifySealBody(WithRevocation):
    model_config = ConfigDict(json_schema_extra={"examples": [{"eseal_b64": "MIIJ..."}]})

    eseal_b64: Base64
    at: AwareDatetime | None = Field(None, description="the time to judge validity at; now")


class VerifySignatureBody(WithRevocation):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"signature_b64": "MIIK...", "data_b64": "PFNpZ25hdHVyZS8+"}]
        }
    )

    signature_b64: Base64
    data_b64: Base64 | None = Field(None, description="the signed data, to compare dataHash")
    sm3_b64: Base64 | None = Field(None, description="or its SM3 digest")

    @model_validator(mode="after")
    def _one_input(self) -> Any:
        if self.data_b64 is not None and self.sm3_b64 is not None:
            raise ValueError("give data_b64 or sm3_b64, not both")
        return self


class CheckModel(BaseModel):
    name: str
    status: Literal["passed", "failed", "indeterminate", "not_checked", "not_applicable"]
    sub_indication: str | None
    message: str


class SealReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "validated_object": "seal_signature",
                    "version": "V4",
                    "indication": "failed",
                    "sub_indication": "SEAL_SUSPENDED_AT_SIGNING_TIME",
                    "signing_time": _TIME,
                    "proven_time": None,
                    "checks": [
                        {
                            "name": "signer_signature",
                            "status": "passed",
                            "sub_indication": None,
                            "message": "signer signature verifies over DER(TBS_Sign)",
                        },
                        {
                            "name": "seal_status",
                            "status": "failed",
                            "sub_indication": "SEAL_SUSPENDED_AT_SIGNING_TIME",
                            "message": "seal 11010000000001 was suspended at the signing time",
                        },
                    ],
                    "performed": ["signer_signature", "seal_status"],
                    "not_performed": [],
                }
            ]
        }
    )

    validated_object: Literal["seal", "seal_signature"]
    version: str | None = Field(description="V1, V4 or V5; null when the input did not parse")
    indication: Literal["passed", "failed", "indeterminate"]
    sub_indication: str | None
    signing_time: datetime | None = None
    proven_time: datetime | None = None
    checks: list[CheckModel]
    performed: list[str]
    not_performed: list[str]

    @classmethod
    def of(cls, what: Literal["seal", "seal_signature"], result: VerificationResult) -> SealReport:
        checks = [
            CheckModel(
                name=c.name.value,
                status=c.status.value,
                sub_indication=None if c.sub_indication is None else c.sub_indication.value,
                message=c.message,
            )
            for c in result.checks
        ]
        done = {"passed", "failed", "indeterminate"}
        return cls(
            validated_object=what,
            version=None if result.version is None else result.version.name,
            indication=result.indication.value,
            sub_indication=None if result.sub_indication is None else result.sub_indication.value,
            signing_time=result.signing_time,
            proven_time=result.proven_time,
            checks=checks,
            performed=[c.name for c in checks if c.status in done],
            not_performed=[c.name for c in checks if c.status == "not_checked"],
        )


# --- lifecycle ------------------------------------------------------------------------


@router.post(
    "/seals",
    status_code=201,
    response_model=SealModel,
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429),
)
async def apply(
    body: ApplyBody, principal: Officer, seals: SealsDep, response: Response
) -> SealModel:
    request = body.request()
    record = await run_in_threadpool(seals.apply, request, actor=principal.actor)
    response.headers["Location"] = f"/v1/seals/{record.esid}"
    return SealModel.of(record, record.created_at)


@router.get("/seals", response_model=SealList, responses=problem_responses(401, 403, 422, 429))
async def list_seals(
    _: Officer,
    seals: SealsDep,
    clock: ClockDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    organization: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SealList:
    records = await run_in_threadpool(
        seals.list_seals,
        status=status,
        organization=organization,
        offset=offset,
        limit=limit + 1,
    )
    now = clock.now()
    return SealList(
        items=[SealModel.of(r, now) for r in records[:limit]],
        next_offset=offset + limit if len(records) > limit else None,
    )


@router.get(
    "/seals/{esid}", response_model=SealModel, responses=problem_responses(401, 403, 404, 429)
)
async def get_seal(esid: EsidPath, _: Reader, seals: SealsDep, clock: ClockDep) -> SealModel:
    record = await run_in_threadpool(seals.get, esid)
    return SealModel.of(record, clock.now())


@router.get(
    "/seals/{esid}/eseal",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "<SESeal, DER>",
                }
            },
            "description": "DER SESeal (.esl)",
        },
        **problem_responses(401, 403, 404, 409, 429),
    },
)
async def download_eseal(esid: EsidPath, _: Reader, seals: SealsDep) -> Response:
    record = await run_in_threadpool(seals.get, esid)
    if record.eseal is None:
        raise SealStateConflict(f"seal {esid} is {record.status}; it has not been made")
    return Response(
        record.eseal,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{esid}.esl"'},
    )


@router.get(
    "/seals/{esid}/history",
    response_model=HistoryModel,
    responses=problem_responses(401, 403, 404, 429),
)
async def history(esid: EsidPath, _: Reader, seals: SealsDep) -> HistoryModel:
    changes = await run_in_threadpool(seals.history, esid)
    return HistoryModel(esid=esid, history=[StatusChangeModel.of(c) for c in changes])


_LIFECYCLE_RESPONSES = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)
ReasonDep = Annotated[ReasonBody | None, Body(examples=[{"reason": "印章保管人离岗"}])]


@router.post("/seals/{esid}/approve", response_model=SealModel, responses=_LIFECYCLE_RESPONSES)
async def approve_seal(
    esid: EsidPath, principal: SealOfficer, seals: SealsDep, clock: ClockDep
) -> SealModel:
    """Approve (a seal officer other than the applicant); approved once enough have."""
    record = await run_in_threadpool(seals.approve, esid, actor=principal.actor)
    return SealModel.of(record, clock.now())


@router.post("/seals/{esid}/make", response_model=SealModel, responses=_LIFECYCLE_RESPONSES)
async def make_seal(
    esid: EsidPath, principal: SealOfficer, seals: SealsDep, clock: ClockDep
) -> SealModel:
    """Make an approved seal: the seal maker signs it (active from its validity start)."""
    record = await run_in_threadpool(seals.make, esid, actor=principal.actor)
    return SealModel.of(record, clock.now())


def _transition(operation: str) -> Any:
    async def route(
        esid: EsidPath,
        principal: SealOfficer,
        seals: SealsDep,
        clock: ClockDep,
        body: ReasonDep = None,
    ) -> SealModel:
        method = getattr(seals, operation)
        reason = body.reason if body is not None else None
        record = await run_in_threadpool(method, esid, actor=principal.actor, reason=reason)
        return SealModel.of(record, clock.now())

    route.__name__ = f"{operation}_seal"
    return route


for _operation in ("suspend", "resume", "revoke"):
    router.post(
        f"/seals/{{esid}}/{_operation}",
        response_model=SealModel,
        responses=_LIFECYCLE_RESPONSES,
        summary=f"{_operation.capitalize()} a seal",
    )(_transition(_operation))


# --- public status (查验) ---------------------------------------------------------------


@router.get(
    "/seals/{esid}/status",
    response_model=StatusModel,
    dependencies=[public()],
    responses=problem_responses(404, 422, 429),
)
async def seal_status(
    esid: EsidPath,
    seals: SealsDep,
    clock: ClockDep,
    response: Response,
    at: Annotated[AwareDatetime | None, Query(description="RFC 3339 time; default now")] = None,
) -> StatusModel:
    answer = await run_in_threadpool(seals.status_at, esid, at)
    past = at is not None and at < clock.now()
    age = _MAX_STATUS_CACHE if past else _NOW_STATUS_CACHE
    response.headers["Cache-Control"] = f"public, max-age={age}"
    return StatusModel.of(answer)


# --- stamping ----------------------------------------------------------------------------


@router.post(
    "/seals/{esid}/stamp",
    response_model=StampResponse,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
)
async def stamp(
    esid: EsidPath, body: StampBody, principal: Stamper, seals: SealsDep
) -> StampResponse:
    # The guard checked the grant on the seal. A token whose signer grants are narrowed to
    # signers may stamp only as one of those; otherwise the seal's signer list decides.
    narrowed = any(g.role is Role.signer and g.resource_type == "signer" for g in principal.grants)
    if narrowed and not principal.allows(frozenset({Role.signer}), "signer", body.signer):
        raise Forbidden(f"this token may not stamp as signer {body.signer!r}")
    request = StampRequest(
        esid=esid,
        signer_id=body.signer,
        property_info=body.property_info,
        data=body.data_b64,
        data_sm3=body.sm3_b64,
        timestamp=body.timestamp,
        revocation=_revocation(body),
    )
    result = await run_in_threadpool(seals.stamp, request, Actor(principal.actor))
    return StampResponse(
        signature_b64=_b64(result.signature),
        esid=result.esid,
        signer=result.signer_id,
        signing_time=result.signing_time,
        timestamped=result.timestamped,
        signer_revocation=result.signer_revocation.state.value,
        signer_revocation_source=result.signer_revocation.source,
    )


# --- verification ------------------------------------------------------------------------

_Verify = public_if("public_verify", Role.verifier)


@router.post(
    "/verify/seal",
    response_model=SealReport,
    dependencies=[_Verify],
    tags=["verify"],
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429),
)
async def verify_seal(body: VerifySealBody, verifier: SealVerifierDep) -> SealReport:
    result = await run_in_threadpool(
        verifier.verify_seal, body.eseal_b64, body.at, revocation=_revocation(body)
    )
    return SealReport.of("seal", result)


@router.post(
    "/verify/seal-signature",
    response_model=SealReport,
    dependencies=[_Verify],
    tags=["verify"],
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429),
)
async def verify_seal_signature(body: VerifySignatureBody, verifier: SealVerifierDep) -> SealReport:
    result = await run_in_threadpool(
        verifier.verify_signature,
        body.signature_b64,
        original=body.data_b64,
        original_sm3=body.sm3_b64,
        revocation=_revocation(body),
    )
    return SealReport.of("seal_signature", result)
