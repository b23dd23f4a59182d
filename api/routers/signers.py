"""Signers: bind key-store keys to certificates, and sign through them (GM/T 0029
SignData as raw signatures, SignMessage as CMS SignedData).

``key_admin`` creates, disables and re-enables signers (a grant narrowed to key ids binds
only those keys); having the service's CA certify the key needs a ``ca_operator`` grant
on that CA as well. Signing needs ``signer``, and a grant narrowed to resource type
``signer`` holds only for its signer ids. The registry (``ca.signers``) decides the rest
and the key store applies the key's state with its own codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool

from api.deps import SignersDep, TimestamperDep
from api.errors import problem_responses
from api.routers.keys import _EXAMPLE_SIGNATURE, Base64, SignBatchRequest, SignRequest, _b64
from api.security import Resource, RoleGuard, Rule, require
from ca.certs import certificate_pem, chain_pem
from ca.signers import CmsOptions, CreateSignerRequest, IssueSpec, SignerInfo, SignerRegistry
from keystore import Actor, SignInput, SignResult
from trust.auth import Principal, Role

router = APIRouter(prefix="/v1", tags=["signers"])

_SIGNER = Resource("signer", path_param="signer_id")
Binder = Annotated[
    Principal, require(Role.key_admin, resource=Resource("key", body_field="key_id"))
]
Manager = Annotated[Principal, require(Role.key_admin)]
_LISTERS = frozenset({Role.key_admin, Role.ca_operator, Role.signer})


def _visible(principal: Principal) -> frozenset[str] | None:
    """The signers the token may list: all (None) with an unnarrowed grant of a listing
    role, else the ids its grants narrowed to signers name."""
    grants = [g for g in principal.grants if g.role in _LISTERS]
    if any(g.resource_ids is None for g in grants):
        return None
    return frozenset(
        i for g in grants if g.resource_type == _SIGNER.type for i in g.resource_ids or ()
    )


class _ListGuard(RoleGuard):
    """``GET /v1/signers`` names no signer, so the generic rule would refuse grants
    narrowed to signers (``api.security``); here they count, and the route lists only
    their signers. Other narrowed grants are refused as usual."""

    async def _authorise(self, request: Request, principal: Principal) -> None:
        visible = _visible(principal)
        if visible is None or visible:
            return
        await super()._authorise(request, principal)


Lister = Annotated[Principal, Depends(_ListGuard(Rule(_LISTERS)))]
Reader = Annotated[
    Principal, require(Role.key_admin, Role.ca_operator, Role.signer, resource=_SIGNER)
]
User = Annotated[Principal, require(Role.signer, resource=_SIGNER)]

SignerIdPath = Annotated[
    str, Path(pattern=r"^sgn_[0-9a-f]{24}$", examples=["sgn_4b1e0c9a7d3f2e6b8a5c1d0f"])
]
_EXAMPLE_ID = "sgn_4b1e0c9a7d3f2e6b8a5c1d0f"
_EXAMPLE_DATA = "aGVsbG8gd29ybGQ="


def _user(principal: Principal) -> Actor:
    # No roles or key grants: the registry lends the signer's key after the guard
    # checked the signer grant, and the key store audits under this id.
    return Actor(principal.actor)


# --- models -------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueBody(_Request):
    ca_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    profile: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="person, organization, seal_signer, ... (GET /v1/profiles)"
    )
    subject: dict[str, Annotated[str, StringConstraints(max_length=256)]] = Field(
        max_length=16, description='e.g. {"CN": "张三", "O": "某单位", "C": "CN"}'
    )
    san: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(None, max_length=16)
    validity_days: int | None = Field(None, ge=1, le=36500)


class CreateSignerBody(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "label": "invoice signing",
                    "key_id": "key_5f0c2e4a9b1d7c3e8f6a0b2d",
                    "issue": {
                        "ca_id": "ca_1",
                        "profile": "organization",
                        "subject": {"CN": "某单位发票签名", "O": "某单位", "C": "CN"},
                    },
                }
            ]
        }
    )

    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    key_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    issue: IssueBody | None = Field(None, description="have the service's CA certify the key")
    certificate_pem: Annotated[str, StringConstraints(max_length=65536)] | None = Field(
        None, description="import: a certificate for the key's primary version"
    )
    chain_pem: Annotated[str, StringConstraints(max_length=262144)] | None = Field(
        None, description="import: its issuers, issuer first (optional)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> CreateSignerBody:
        if (self.issue is None) == (self.certificate_pem is None):
            raise ValueError("give exactly one of issue and certificate_pem")
        if self.chain_pem is not None and self.certificate_pem is None:
            raise ValueError("chain_pem goes with certificate_pem")
        return self

    def request(self) -> CreateSignerRequest:
        issue = None
        if self.issue is not None:
            i = self.issue
            issue = IssueSpec(i.ca_id, i.profile, i.subject, i.san, i.validity_days)
        return CreateSignerRequest(
            label=self.label,
            key_id=self.key_id,
            issue=issue,
            certificate=None if self.certificate_pem is None else self.certificate_pem.encode(),
            chain=None if self.chain_pem is None else self.chain_pem.encode(),
        )


_SIGNER_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ID,
    "label": "invoice signing",
    "key_id": "key_5f0c2e4a9b1d7c3e8f6a0b2d",
    "algorithm": "SM2",
    "source": "issued",
    "status": "active",
    "owner": "token:3f9a1c0b7e42",
    "created_at": "2026-01-01T00:00:00Z",
    "subject": "C=CN, O=某单位, CN=某单位发票签名",
    "not_after": "2029-01-01T00:00:00Z",
    "certificate_serial": "5d2f0c9e8b7a61423f1e0d9c8b7a6f51",
    "ca_id": "ca_55d6b20491b0ccc6",
    "certificate_pem": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
    "chain_pem": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
}


class SignerModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SIGNER_EXAMPLE]})

    id: str
    label: str
    key_id: str
    algorithm: str
    source: Literal["issued", "imported"]
    status: Literal["active", "disabled"]
    owner: str
    created_at: datetime
    subject: str
    not_after: datetime
    certificate_serial: str | None = Field(description="when issued by this service's CA")
    ca_id: str | None
    certificate_pem: str
    chain_pem: str = Field(description="issuer first; empty when none was given")

    @classmethod
    def of(cls, info: SignerInfo) -> SignerModel:
        return cls(
            id=info.id,
            label=info.label,
            key_id=info.key_id,
            algorithm=info.algorithm,
            source=info.source,
            status=info.status,
            owner=info.owner,
            created_at=info.created_at,
            subject=info.subject,
            not_after=info.not_after,
            certificate_serial=info.certificate_serial,
            ca_id=info.ca_id,
            certificate_pem=certificate_pem(info.certificate_der),
            chain_pem=chain_pem(info.chain_der),
        )


class SignerList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"signers": [_SIGNER_EXAMPLE]}]})

    signers: list[SignerModel]


class StatusBody(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "disabled"}]})

    status: Literal["active", "disabled"]


class RawSignature(BaseModel):
    signature_b64: str = Field(description="SM2/ECDSA: DER SEQUENCE {r, s}; RSA: raw")
    version: int = Field(description="the key version that signed")


_RAW_EXAMPLE: dict[str, Any] = {"signature_b64": _EXAMPLE_SIGNATURE, "version": 1}
# Abbreviated: a real SignedData is about 1.5 KB of base64 with the certificate.
_CMS_EXAMPLE: dict[str, Any] = {
    "cms_b64": "MIIEGgYKKoEcz1UGAQQCAqCCBAowggQGAgEBMQ4wDAYIKoEcz1UBgxEFADAMBgoqgRzPVQYBBAIB..."
}


class SignResponse(RawSignature):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_RAW_EXAMPLE, "signer_id": _EXAMPLE_ID, "algorithm": "SM2"}]
        }
    )

    signer_id: str
    algorithm: str


class SignBatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"signer_id": _EXAMPLE_ID, "algorithm": "SM2", "items": [_RAW_EXAMPLE]}]
        }
    )

    signer_id: str
    algorithm: str
    items: list[RawSignature] = Field(description="one signature per request item, in order")


class _CmsOptionsBody(_Request):
    detached: bool = Field(False, description="leave the content out of the SignedData")
    include_chain: bool = Field(False, description="add the signer's chain to certificates")
    timestamp: bool = Field(
        False, description="embed a signature timestamp token from the service's TSA"
    )
    profile: Literal["gmt0010", "rfc5652"] | None = Field(
        None, description="OIDs: gmt0010 (default for SM2, SM2 only) or rfc5652"
    )

    def options(self) -> CmsOptions:
        return CmsOptions(self.detached, self.include_chain, self.timestamp, self.profile)


class CmsBody(_CmsOptionsBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data_b64": _EXAMPLE_DATA, "detached": True}]}
    )

    data_b64: Base64


class CmsItem(_Request):
    data_b64: Base64


class CmsBatchBody(_CmsOptionsBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"data_b64": _EXAMPLE_DATA}, {"data_b64": "c2Vjb25k"}],
                    "detached": True,
                    "timestamp": False,
                }
            ]
        }
    )

    items: list[CmsItem] = Field(min_length=1, max_length=1000)


class CmsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CMS_EXAMPLE]})

    cms_b64: str = Field(description="DER ContentInfo holding the SignedData")


class CmsBatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"signer_id": _EXAMPLE_ID, "items": [_CMS_EXAMPLE]}]}
    )

    signer_id: str
    items: list[CmsResponse] = Field(description="one SignedData per request item, in order")


# --- routes --------------------------------------------------------------------------

_USE_ERRORS = problem_responses(400, 404, 409, 503)


def _binder(principal: Principal, body: CreateSignerBody) -> Actor:
    """``key_admin`` (the guard checked it on the key); ``ca_operator`` too when that grant
    holds on the CA asked to certify."""
    roles = {Role.key_admin.value}
    if body.issue is not None and principal.allows(
        frozenset({Role.ca_operator}), "ca", body.issue.ca_id
    ):
        roles.add(Role.ca_operator.value)
    return Actor(principal.actor, frozenset(roles), frozenset({body.key_id}))


@router.post(
    "/signers",
    status_code=201,
    response_model=SignerModel,
    summary="Create a signer: a key bound to a certificate issued now or imported",
    responses=problem_responses(400, 404, 409),
)
async def create_signer(
    body: CreateSignerBody, principal: Binder, signers: SignersDep, response: Response
) -> SignerModel:
    info = await run_in_threadpool(signers.create, body.request(), _binder(principal, body))
    response.headers["Location"] = f"/v1/signers/{info.id}"
    return SignerModel.of(info)


@router.get(
    "/signers",
    response_model=SignerList,
    summary="List signers",
    description="`key_admin`, `ca_operator` or `signer`; a token whose grants are narrowed "
    "to signers sees only those signers.",
)
async def list_signers(principal: Lister, signers: SignersDep) -> SignerList:
    infos = await run_in_threadpool(signers.list_signers)
    visible = _visible(principal)
    return SignerList(
        signers=[SignerModel.of(i) for i in infos if visible is None or i.id in visible]
    )


@router.get(
    "/signers/{signer_id}",
    response_model=SignerModel,
    summary="Show one signer with its certificate and chain",
    responses=problem_responses(404),
)
async def get_signer(signer_id: SignerIdPath, _: Reader, signers: SignersDep) -> SignerModel:
    return SignerModel.of(await run_in_threadpool(signers.get, signer_id))


@router.post(
    "/signers/{signer_id}/status",
    response_model=SignerModel,
    summary="Disable or re-enable a signer",
    responses=problem_responses(400, 404),
)
async def set_status(
    signer_id: SignerIdPath, body: StatusBody, principal: Manager, signers: SignersDep
) -> SignerModel:
    info = await run_in_threadpool(
        signers.set_status, signer_id, body.status, Actor(principal.actor)
    )
    return SignerModel.of(info)


@router.post(
    "/signers/{signer_id}/sign",
    response_model=SignResponse,
    summary="Raw signature (GM/T 0029 SignData) by the signer's certified key",
    responses=_USE_ERRORS,
)
async def sign(
    signer_id: SignerIdPath, body: SignRequest, principal: User, signers: SignersDep
) -> SignResponse:
    data, prehashed = body.message
    item = SignInput(data, prehashed, body.signer_id_bytes)
    (result,) = await run_in_threadpool(_sign, signers, signer_id, [item], _user(principal), body)
    return SignResponse(
        signature_b64=_b64(result.signature),
        version=result.version,
        signer_id=signer_id,
        algorithm=result.algorithm.value,
    )


@router.post(
    "/signers/{signer_id}/sign:batch",
    response_model=SignBatchResponse,
    summary="Raw signatures of many messages in one request",
    responses=_USE_ERRORS,
)
async def sign_batch(
    signer_id: SignerIdPath, body: SignBatchRequest, principal: User, signers: SignersDep
) -> SignBatchResponse:
    items = [SignInput(*i.message, i.signer_id_bytes) for i in body.items]
    results = await run_in_threadpool(_sign, signers, signer_id, items, _user(principal), body)
    return SignBatchResponse(
        signer_id=signer_id,
        algorithm=results[0].algorithm.value,
        items=[RawSignature(signature_b64=_b64(r.signature), version=r.version) for r in results],
    )


def _sign(
    signers: SignerRegistry,
    signer_id: str,
    items: Sequence[SignInput],
    actor: Actor,
    body: SignRequest | SignBatchRequest,
) -> list[SignResult]:
    return signers.sign(signer_id, items, actor, scheme=body.scheme)


@router.post(
    "/signers/{signer_id}/cms",
    response_model=CmsResponse,
    summary="CMS SignedData (GM/T 0029 SignMessage; GM/T 0010 for SM2 by default)",
    responses=_USE_ERRORS,
)
async def sign_cms(
    signer_id: SignerIdPath,
    body: CmsBody,
    principal: User,
    signers: SignersDep,
    timestamper: TimestamperDep,
) -> CmsResponse:
    (der,) = await run_in_threadpool(
        signers.sign_cms,
        signer_id,
        [body.data_b64],
        body.options(),
        _user(principal),
        timestamper=timestamper,
    )
    return CmsResponse(cms_b64=_b64(der))


@router.post(
    "/signers/{signer_id}/cms:batch",
    response_model=CmsBatchResponse,
    summary="CMS SignedData for many contents in one request, with the same options",
    responses=_USE_ERRORS,
)
async def sign_cms_batch(
    signer_id: SignerIdPath,
    body: CmsBatchBody,
    principal: User,
    signers: SignersDep,
    timestamper: TimestamperDep,
) -> CmsBatchResponse:
    ders = await run_in_threadpool(
        signers.sign_cms,
        signer_id,
        [i.data_b64 for i in body.items],
        body.options(),
        _user(principal),
        timestamper=timestamper,
    )
    return CmsBatchResponse(signer_id=signer_id, items=[CmsResponse(cms_b64=_b64(d)) for d in ders])
