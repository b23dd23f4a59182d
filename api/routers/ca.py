"""Certificate authority: CAs, profiles, issuance, revocation, CRLs and OCSP.

Management and issuance need ``ca_operator``. What relying parties fetch without an
account is public: CA certificates and chains (the AIA caIssuers target), CRLs (the
CRL distribution point) and OCSP (RFC 6960, POST and GET). The CA service audits every
state change under the caller's actor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from asn1crypto import crl as asn1_crl
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from api.deps import CaDep, ClockDep
from api.errors import problem_responses
from api.security import public, require
from ca.certs import certificate_pem, certs_only, chain_pem
from ca.crl import RevocationReason
from ca.crl_schedule import CrlSchedule
from ca.dual import DualIssueRequest, DualIssueResult, RecoveredKey
from ca.issue import IssueRequest, IssueResult
from ca.profiles import Profile, list_profiles
from ca.service import CaInfo, CertificateInfo, CreateCaRequest, RolloverResult
from trust.auth import Principal, Role
from trust.errors import MalformedEncoding, UnsupportedMediaType
from trust.keys import KeyAlgorithm


@asynccontextmanager
async def crl_schedule(app: FastAPI) -> AsyncIterator[None]:
    """Scheduled CRLs (``ca/crl_schedule.py``) while the app runs; FastAPI merges this
    router lifespan into the app's, after its start-up checks."""
    services = app.state.services
    settings = services.settings
    task = None
    if settings.ca_crl_schedule_seconds > 0:
        overlap = timedelta(hours=settings.ca_crl_overlap_hours)
        schedule = CrlSchedule(services.ca(), services.coordination, overlap)
        task = asyncio.create_task(schedule.run_periodically(settings.ca_crl_schedule_seconds))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


router = APIRouter(tags=["ca"], lifespan=crl_schedule)

Operator = Annotated[Principal, require(Role.ca_operator)]
KeyAdmin = Annotated[Principal, require(Role.key_admin)]

CaId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", examples=["ca_5f0c2e4a9b1d7c3e"])]
SerialHex = Annotated[
    str, Path(pattern=r"^[0-9A-Fa-f:]{1,64}$", examples=["4a1f9c0e7d2b6a385c1e0f9d"])
]

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PKCS7_MIME = "application/pkcs7-mime"
PKCS7_CERTS_ONLY = PKCS7_MIME + "; smime-type=certs-only"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"

_CA_ID = "ca_5f0c2e4a9b1d7c3e"
_SERIAL = "4a1f9c0e7d2b6a385c1e0f9d"
_PEM = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
_CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB...\n-----END CERTIFICATE REQUEST-----\n"


# Binary bodies have no JSON form; the examples say what the bytes are.
def _binary(what: str) -> dict[str, Any]:
    return {"schema": {"type": "string", "format": "binary"}, "example": f"<{what}, DER>"}


class PemResponse(Response):
    media_type = "application/x-pem-file"


# --- models -------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Subject = Annotated[
    dict[str, str],
    Field(
        description="attribute -> value; short (CN, O, C) or asn1crypto names (common_name)",
        max_length=20,
    ),
]


class CreateCaBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Example SM2 Root CA",
                    "subject": {"C": "CN", "O": "Example", "CN": "Example SM2 Root CA"},
                    "key_algorithm": "sm2",
                    "validity_days": 7300,
                },
                {
                    "name": "Example SM2 Issuing CA",
                    "key_algorithm": "sm2",
                    "parent_ca_id": _CA_ID,
                },
            ]
        }
    )

    name: Name
    subject: Subject | None = Field(None, description="default C=CN, O=<organization>, CN=name")
    key_algorithm: KeyAlgorithm = KeyAlgorithm.SM2
    parent_ca_id: str | None = Field(None, description="omit for a self-signed root")
    validity_days: int | None = Field(None, ge=1, le=30 * 366, description="default: profile's")


_CA_EXAMPLE: dict[str, Any] = {
    "id": _CA_ID,
    "name": "Example SM2 Root CA",
    "parent_id": None,
    "algorithm": "sm2",
    "key_id": "key_5f0c2e4a9b1d7c3e8f6a0b2d",
    "serial_hex": _SERIAL,
    "subject": "C=CN, O=Example, CN=Example SM2 Root CA",
    "not_before": "2026-01-01T00:00:00Z",
    "not_after": "2046-01-01T00:00:00Z",
    "certificate_pem": _PEM,
    "generation": 1,
}


class CaModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CA_EXAMPLE]})

    id: str
    name: str
    parent_id: str | None
    algorithm: str
    key_id: str
    serial_hex: str
    subject: str
    not_before: datetime
    not_after: datetime
    certificate_pem: str
    generation: int = Field(description="key generation: 1, then one more per rollover")

    @classmethod
    def of(cls, info: CaInfo) -> CaModel:
        return cls(**info.__dict__)


class RolloverBody(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"validity_days": 3650}]})

    validity_days: int | None = Field(None, ge=1, le=30 * 366, description="default: profile's")


class RolloverResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ca": {**_CA_EXAMPLE, "generation": 2},
                    "previous_generation": 1,
                    "new_with_old_pem": _PEM,
                    "old_with_new_pem": _PEM,
                }
            ]
        }
    )

    ca: CaModel
    previous_generation: int
    new_with_old_pem: str | None = Field(description="the new key certified by the old one")
    old_with_new_pem: str | None = Field(description="the old key certified by the new one")

    @classmethod
    def of(cls, result: RolloverResult) -> RolloverResponse:
        return cls(
            ca=CaModel.of(result.ca),
            previous_generation=result.previous_generation,
            new_with_old_pem=None
            if result.new_with_old is None
            else certificate_pem(result.new_with_old),
            old_with_new_pem=None
            if result.old_with_new is None
            else certificate_pem(result.old_with_new),
        )


Generation = Annotated[
    int | None,
    Query(ge=1, le=10_000, description="CA key generation (after rollovers)"),
]


class CaList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cas": [_CA_EXAMPLE]}]})

    cas: list[CaModel]


_PROFILE_EXAMPLE: dict[str, Any] = {
    "name": "person",
    "version": 1,
    "description": "natural person signing certificate",
    "key_usage": ["digital_signature", "non_repudiation"],
    "extended_key_usage": [],
    "key_algorithms": ["ecdsa-p256", "sm2"],
    "max_validity_days": 1095,
    "default_validity_days": 365,
    "required_subject": ["common_name"],
    "san_allowed": ["email"],
    "san_required": False,
    "is_ca": False,
}


class ProfileModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PROFILE_EXAMPLE]})

    name: str
    version: int
    description: str
    key_usage: list[str]
    extended_key_usage: list[str]
    key_algorithms: list[str]
    max_validity_days: int
    default_validity_days: int
    required_subject: list[str]
    san_allowed: list[str]
    san_required: bool
    is_ca: bool

    @classmethod
    def of(cls, p: Profile) -> ProfileModel:
        return cls(
            name=p.name,
            version=p.version,
            description=p.description,
            key_usage=sorted(p.key_usage),
            extended_key_usage=list(p.extended_key_usage),
            key_algorithms=sorted(p.key_algorithms),
            max_validity_days=p.max_validity.days,
            default_validity_days=p.default_validity.days,
            required_subject=sorted(p.required_subject),
            san_allowed=sorted(p.san_allowed),
            san_required=p.san_required,
            is_ca=p.is_ca,
        )


class ProfileList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"profiles": [_PROFILE_EXAMPLE]}]})

    profiles: list[ProfileModel]


class IssueBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"csr_pem": _CSR, "profile": "person"},
                {
                    "csr_pem": _CSR,
                    "profile": "server",
                    "subject": {"CN": "www.example.cn", "O": "Example"},
                    "san": ["dns:www.example.cn"],
                    "validity_days": 365,
                },
            ]
        }
    )

    csr_pem: Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024)] = Field(
        description="PKCS#10 request, PEM; its signature (proof of possession) is checked"
    )
    profile: Name
    subject: Subject | None = Field(None, description="replaces the subject the CSR asks for")
    san: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        None, max_length=100, description="kind:value (dns:, ip:, email:); replaces the CSR's"
    )
    validity_days: int | None = Field(None, ge=1, le=30 * 366)


class IssueResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial_hex": _SERIAL,
                    "certificate_pem": _PEM,
                    "chain_pem": _PEM + _PEM,
                    "not_before": "2026-01-01T00:00:00Z",
                    "not_after": "2027-01-01T00:00:00Z",
                }
            ]
        }
    )

    serial_hex: str
    certificate_pem: str
    chain_pem: str = Field(description="issuing CA first, root last")
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, result: IssueResult) -> IssueResponse:
        return cls(
            serial_hex=result.serial_hex,
            certificate_pem=result.certificate_pem,
            chain_pem=result.chain_pem,
            not_before=result.not_before,
            not_after=result.not_after,
        )


class DualIssueBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"csr_pem": _CSR, "profile": "person", "san": ["email:zhangsan@example.cn"]}
            ]
        }
    )

    csr_pem: Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024)] = Field(
        description="PKCS#10 request for the subscriber's SM2 signing key, PEM"
    )
    profile: Name = Field("person", description="profile of the signing certificate")
    subject: Subject | None = Field(None, description="replaces the subject the CSR asks for")
    san: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        None, max_length=100, description="kind:value (dns:, ip:, email:); replaces the CSR's"
    )
    validity_days: int | None = Field(None, ge=1, le=30 * 366)


_ENVELOPE = "MIHxMAwGCCqBHM9VAWgBBQAweg..."


class DualIssueResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signing": {
                        "serial_hex": _SERIAL,
                        "certificate_pem": _PEM,
                        "chain_pem": _PEM + _PEM,
                        "not_before": "2026-01-01T00:00:00Z",
                        "not_after": "2027-01-01T00:00:00Z",
                    },
                    "encryption": {
                        "serial_hex": "7c3e0f9d4a1f9c0e7d2b6a38",
                        "certificate_pem": _PEM,
                        "chain_pem": _PEM + _PEM,
                        "not_before": "2026-01-01T00:00:00Z",
                        "not_after": "2027-01-01T00:00:00Z",
                    },
                    "enveloped_key_b64": _ENVELOPE,
                }
            ]
        }
    )

    signing: IssueResponse
    encryption: IssueResponse
    enveloped_key_b64: str = Field(
        description="GM/T 0009 SM2EnvelopedKey (DER, base64) of the encryption private key, "
        "for the signing certificate's public key"
    )

    @classmethod
    def of(cls, result: DualIssueResult) -> DualIssueResponse:
        return cls(
            signing=IssueResponse.of(result.signing),
            encryption=IssueResponse.of(result.encryption),
            enveloped_key_b64=base64.b64encode(result.enveloped_key_der).decode("ascii"),
        )


class RecoverKeyBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{}, {"recipient_serial_hex": _SERIAL}]}
    )

    recipient_serial_hex: (
        Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f:]{1,64}$")] | None
    ) = Field(
        None,
        description="a good SM2 signing certificate of this service to envelope the key for; "
        "default: the signing certificate issued with the encryption certificate",
    )


class RecoveredKeyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial_hex": _SERIAL,
                    "recipient_serial_hex": "7c3e0f9d4a1f9c0e7d2b6a38",
                    "enveloped_key_b64": _ENVELOPE,
                }
            ]
        }
    )

    serial_hex: str
    recipient_serial_hex: str
    enveloped_key_b64: str = Field(description="GM/T 0009 SM2EnvelopedKey, DER, base64")

    @classmethod
    def of(cls, result: RecoveredKey) -> RecoveredKeyResponse:
        return cls(
            serial_hex=result.serial_hex,
            recipient_serial_hex=result.recipient_serial_hex,
            enveloped_key_b64=base64.b64encode(result.enveloped_key_der).decode("ascii"),
        )


_CERT_EXAMPLE: dict[str, Any] = {
    "serial_hex": _SERIAL,
    "ca_id": _CA_ID,
    "status": "revoked",
    "profile": "person",
    "subject": "CN=张三",
    "not_before": "2026-01-01T00:00:00Z",
    "not_after": "2027-01-01T00:00:00Z",
    "revoked_at": "2026-03-01T08:00:00Z",
    "revocation_reason": "key_compromise",
    "replaces": None,
    "certificate_pem": _PEM,
}


class CertificateModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CERT_EXAMPLE]})

    serial_hex: str
    ca_id: str
    status: Literal["reserved", "good", "on_hold", "revoked"]
    profile: str
    subject: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    replaces: str | None = Field(description="serial of the certificate this one renews")
    certificate_pem: str | None = Field(description="null while only reserved")

    @classmethod
    def of(cls, info: CertificateInfo) -> CertificateModel:
        return cls(**info.__dict__)


class CertificateList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"certificates": [_CERT_EXAMPLE], "offset": 0, "next_offset": None}]
        }
    )

    certificates: list[CertificateModel]
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class RevokeBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "key_compromise"}, {"reason": "certificate_hold"}]
        }
    )

    reason: RevocationReason = RevocationReason.UNSPECIFIED


# --- CAs and profiles -----------------------------------------------------------------


@router.post(
    "/v1/cas",
    status_code=201,
    response_model=CaModel,
    summary="Create a root CA, or an issuing CA under a root",
    responses=problem_responses(400, 404, 409),
)
async def create_ca(
    body: CreateCaBody, principal: Operator, ca: CaDep, response: Response
) -> CaModel:
    request = CreateCaRequest(
        name=body.name,
        algorithm=body.key_algorithm,
        parent_id=body.parent_ca_id,
        subject=body.subject,
        validity_days=body.validity_days,
    )
    info = await run_in_threadpool(lambda: ca.create_ca(request, actor=principal.actor))
    response.headers["Location"] = f"/v1/cas/{info.id}"
    return CaModel.of(info)


@router.get("/v1/cas", response_model=CaList, summary="List CAs")
async def list_cas(_: Operator, ca: CaDep) -> CaList:
    return CaList(cas=[CaModel.of(i) for i in await run_in_threadpool(ca.list_cas)])


@router.get(
    "/v1/cas/{ca_id}", response_model=CaModel, summary="Show a CA", responses=problem_responses(404)
)
async def get_ca(ca_id: CaId, _: Operator, ca: CaDep) -> CaModel:
    return CaModel.of(await run_in_threadpool(ca.get_ca, ca_id))


@router.post(
    "/v1/cas/{ca_id}/rollover",
    response_model=RolloverResponse,
    summary="Roll the CA over to a new key and certificate, with link certificates",
    responses=problem_responses(400, 404, 409),
)
async def rollover(
    ca_id: CaId, principal: Operator, ca: CaDep, body: RolloverBody | None = None
) -> RolloverResponse:
    days = None if body is None else body.validity_days
    result = await run_in_threadpool(
        lambda: ca.rollover(ca_id, validity_days=days, actor=principal.actor)
    )
    return RolloverResponse.of(result)


@router.get(
    "/v1/cas/{ca_id}/certificate",
    response_class=PemResponse,
    dependencies=[public()],
    summary="The CA's certificate (the AIA caIssuers target): PEM, or DER with Accept: "
    "application/pkix-cert, of the key ?generation= names. Without ?generation= (what "
    "certificates of the first key, and those issued before per-key URLs, name): after a "
    "rollover, every key's certificate, as a certs-only CMS message (application/pkcs7-mime, "
    "RFC 5280 §4.2.2.1) or PEM with Accept: application/x-pem-file; Accept: "
    "application/pkix-cert still gets the first key's certificate. Accept: "
    "application/pkcs7-mime always gets the certs-only form",
    responses={
        200: {
            "content": {
                PemResponse.media_type: {"example": _PEM},
                PKIX_CERT: _binary("Certificate"),
                PKCS7_MIME: _binary("ContentInfo, certs-only SignedData"),
            }
        },
        **problem_responses(404),
    },
)
async def ca_certificate(
    ca_id: CaId, request: Request, ca: CaDep, generation: Generation = None
) -> Response:
    # RFC 5280 §4.2.2.1 clients want DER, one certificate or a certs-only CMS bundle.
    accept = request.headers.get("accept", "")
    if generation is not None:
        ders = [await run_in_threadpool(ca.certificate, ca_id, generation)]
    else:
        # A GET says nothing about the certificate whose chain is being built, and
        # certificates of any key may name this URL, so it serves every key's certificate.
        ders = await run_in_threadpool(ca.key_certificates, ca_id)
    if PKCS7_MIME in accept:
        return Response(certs_only(ders), media_type=PKCS7_CERTS_ONLY)
    if PKIX_CERT in accept:  # one DER certificate: the first key's
        return Response(ders[0], media_type=PKIX_CERT)
    if len(ders) == 1 or PemResponse.media_type in accept:
        return PemResponse(chain_pem(ders))
    return Response(certs_only(ders), media_type=PKCS7_CERTS_ONLY)


@router.get(
    "/v1/cas/{ca_id}/chain",
    response_class=PemResponse,
    dependencies=[public()],
    summary="The CA's certificate and its issuers up to the root, PEM, the CA's own first "
    "(its current key, or the key ?generation= names)",
    responses={
        200: {"content": {PemResponse.media_type: {"example": _PEM + _PEM}}},
        **problem_responses(404),
    },
)
async def ca_chain(ca_id: CaId, ca: CaDep, generation: Generation = None) -> PemResponse:
    chain = await run_in_threadpool(ca.chain, ca_id, generation)
    return PemResponse("".join(certificate_pem(der) for der in chain))


@router.get("/v1/profiles", response_model=ProfileList, summary="Certificate profiles")
async def profiles(_: Operator) -> ProfileList:
    return ProfileList(profiles=[ProfileModel.of(p) for p in list_profiles()])


# --- certificates ---------------------------------------------------------------------


@router.post(
    "/v1/cas/{ca_id}/certificates",
    status_code=201,
    response_model=IssueResponse,
    summary="Issue a certificate from a PKCS#10 request under a profile",
    responses=problem_responses(400, 404, 409),
)
async def issue(
    ca_id: CaId, body: IssueBody, principal: Operator, ca: CaDep, response: Response
) -> IssueResponse:
    request = IssueRequest(
        ca_id=ca_id,
        profile=body.profile,
        csr=body.csr_pem.encode("utf-8"),
        subject=body.subject,
        san=body.san,
        validity_days=body.validity_days,
    )
    result = await run_in_threadpool(lambda: ca.issue(request, actor=principal.actor))
    response.headers["Location"] = f"/v1/certificates/{result.serial_hex}"
    return IssueResponse.of(result)


@router.post(
    "/v1/cas/{ca_id}/certificates:dual",
    status_code=201,
    response_model=DualIssueResponse,
    summary="Issue a dual pair: a signing certificate from the CSR and an encryption "
    "certificate for a key the key store generates and escrows (GM/T 0015)",
    responses=problem_responses(400, 404, 409),
)
async def issue_dual(
    ca_id: CaId, body: DualIssueBody, principal: Operator, ca: CaDep, response: Response
) -> DualIssueResponse:
    request = DualIssueRequest(
        ca_id=ca_id,
        csr=body.csr_pem.encode("utf-8"),
        profile=body.profile,
        subject=body.subject,
        san=None if body.san is None else tuple(body.san),
        validity_days=body.validity_days,
    )
    result = await run_in_threadpool(lambda: ca.issue_dual(request, actor=principal.actor))
    response.headers["Location"] = f"/v1/certificates/{result.signing.serial_hex}"
    return DualIssueResponse.of(result)


@router.post(
    "/v1/certificates/{serial_hex}/recover-key",
    response_model=RecoveredKeyResponse,
    summary="Recover an encryption certificate's escrowed key, as an SM2EnvelopedKey",
    responses=problem_responses(400, 404, 409),
)
async def recover_key(
    serial_hex: SerialHex, principal: KeyAdmin, ca: CaDep, body: RecoverKeyBody | None = None
) -> RecoveredKeyResponse:
    recipient = None if body is None else body.recipient_serial_hex
    result = await run_in_threadpool(
        lambda: ca.recover_key(serial_hex, recipient_serial_hex=recipient, actor=principal.actor)
    )
    return RecoveredKeyResponse.of(result)


@router.get(
    "/v1/certificates/{serial_hex}",
    response_model=CertificateModel,
    summary="Show a certificate and its status",
    responses=problem_responses(400, 404),
)
async def get_certificate(serial_hex: SerialHex, _: Operator, ca: CaDep) -> CertificateModel:
    return CertificateModel.of(await run_in_threadpool(ca.get_certificate, serial_hex))


@router.get(
    "/v1/certificates",
    response_model=CertificateList,
    summary="Find certificates (oldest first, paged)",
)
async def list_certificates(
    _: Operator,
    ca: CaDep,
    subject: Annotated[
        str | None, Query(max_length=200, description="substring, case-insensitive")
    ] = None,
    status: Annotated[Literal["good", "revoked", "reserved"] | None, Query()] = None,
    profile: Annotated[str | None, Query(max_length=200)] = None,
    ca_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CertificateList:
    # One more than asked says whether another page exists.
    infos = await run_in_threadpool(
        lambda: ca.list_certificates(
            ca_id=ca_id,
            subject=subject,
            status=status,
            profile=profile,
            offset=offset,
            limit=limit + 1,
        )
    )
    return CertificateList(
        certificates=[CertificateModel.of(i) for i in infos[:limit]],
        offset=offset,
        next_offset=offset + limit if len(infos) > limit else None,
    )


@router.post(
    "/v1/certificates/{serial_hex}/revoke",
    response_model=CertificateModel,
    summary="Revoke a certificate (certificate_hold suspends it until released)",
    responses=problem_responses(400, 404, 409),
)
async def revoke(
    serial_hex: SerialHex, body: RevokeBody, principal: Operator, ca: CaDep
) -> CertificateModel:
    info = await run_in_threadpool(
        lambda: ca.revoke(serial_hex, body.reason, actor=principal.actor)
    )
    return CertificateModel.of(info)


@router.post(
    "/v1/certificates/{serial_hex}/release-hold",
    response_model=CertificateModel,
    summary="Release a certificate from hold",
    responses=problem_responses(400, 404, 409),
)
async def release_hold(serial_hex: SerialHex, principal: Operator, ca: CaDep) -> CertificateModel:
    info = await run_in_threadpool(lambda: ca.release_hold(serial_hex, actor=principal.actor))
    return CertificateModel.of(info)


# --- CRL and OCSP (public) ------------------------------------------------------------


@router.get(
    "/crl/{ca_id}.crl",
    dependencies=[public()],
    response_class=Response,
    summary="The CA's current full CRL (DER), for the certificates of its first key unless "
    "?generation= names another (the CRL distribution point); cacheable until nextUpdate",
    responses={
        200: {"content": {PKIX_CRL: _binary("CertificateList")}},
        **problem_responses(404),
    },
)
async def get_crl(
    ca_id: CaId, ca: CaDep, clock: ClockDep, generation: Generation = None
) -> Response:
    der = await run_in_threadpool(ca.current_crl, ca_id, generation or 1)
    next_update = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["next_update"].native
    max_age = max(0, int((next_update - clock.now()).total_seconds()))
    return Response(der, media_type=PKIX_CRL, headers={"Cache-Control": f"max-age={max_age}"})


_OCSP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an OCSPResponse; malformed requests get status malformedRequest "
        "(RFC 6960 §2.3), unknown issuers unauthorized",
        "content": {OCSP_RESPONSE: _binary("OCSPResponse")},
    },
    **problem_responses(400, 415),
}


@router.post(
    "/ocsp",
    dependencies=[public()],
    response_class=Response,
    summary="OCSP (RFC 6960) over POST",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {OCSP_REQUEST: _binary("OCSPRequest")},
        }
    },
    responses=_OCSP_RESPONSES,
)
async def ocsp_post(request: Request, ca: CaDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OCSP_REQUEST:
        raise UnsupportedMediaType(f"send the OCSP request as {OCSP_REQUEST}")
    der = await request.body()
    # A repeated nonce-less request is answered on the event loop, without a thread hop.
    answer = ca.ocsp_cached(der)
    if answer is None:
        answer = await run_in_threadpool(ca.ocsp, der)
    return Response(answer, media_type=OCSP_RESPONSE)


@router.get(
    "/ocsp/{request_b64:path}",
    dependencies=[public()],
    response_class=Response,
    summary="OCSP (RFC 6960 Appendix A) over GET: the DER request base64, URL-encoded",
    responses=_OCSP_RESPONSES,
)
async def ocsp_get(
    request_b64: Annotated[str, Path(pattern=r"^[A-Za-z0-9+/=%]{1,8192}$")], ca: CaDep
) -> Response:
    try:
        der = binascii.a2b_base64(unquote(request_b64).encode("ascii"), strict_mode=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise MalformedEncoding("the OCSP request in the URL is not base64") from None
    answer = ca.ocsp_cached(der)
    if answer is None:
        answer = await run_in_threadpool(ca.ocsp, der)
    return Response(answer, media_type=OCSP_RESPONSE)
