"""Verification (GM/T 0029): signatures, CMS SignedData and certificates as ETSI
EN 319 102-1 validation reports, and certificate parsing.

Public while ``settings.public_verify`` is true, else the ``verifier`` role. Trust
anchors are the service's own root CAs (its issuing CAs are offered as intermediates)
plus the roots in ``settings.trust_anchor_files``.

Revocation: requests may carry ``crls_b64`` and ``ocsp_responses_b64`` (nothing is
fetched); the current CRL of every service CA is added in-process (``Services.ca()``), so
certificates the service issued always have revocation data. ``revocation_mode``
chooses what missing data means: ``soft-fail`` (default) accepts it and says so,
``hard-fail`` requires data for certificates that name a CRL or OCSP location,
``require`` for every certificate below the anchor (missing: INDETERMINATE/TRY_LATER),
``none`` checks nothing. The report lists the CRLs and OCSP responses it used.

Signature timestamps inside a CMS are verified (``timestamp.checker.TokenChecker``) and
a good one is the proven signing time; ``/verify/timestamp`` reports on a token alone.

A request that is not well formed (bad base64, a PEM that is not a certificate) is a
4xx problem. A CMS that does not parse is different: it is the object under
validation, so the answer is a 200 report TOTAL_FAILED/FORMAT_FAILURE, as for any other
verdict on it; clients read one report format whatever was wrong with the signature.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from asn1crypto import ocsp, x509
from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.deps import Services, get_services
from api.errors import problem_responses
from api.report_signing import ReportSigner, ensure_report_signer
from api.routers.keys import Base64, SignerId
from api.security import public_if
from ca.service import CertificateAuthority
from timestamp.checker import TokenChecker
from trust.auth import Role
from trust.errors import ConfigurationError, TrustError
from trust.validation import (
    RevocationMode,
    SignatureEncoding,
    ValidationReport,
    VerifyLevel,
    validate_certificate,
    verify_cms_detailed,
    verify_raw_signature,
    verify_timestamp,
)
from trust.validation.certs import certificate_info, load_certificate, load_certificates
from trust.validation.cms_report import CmsVerification
from trust.validation.evidence import EvidenceBundle, build_evidence
from trust.validation.ocsp_source import OcspSource, ocsp_request
from trust.validation.signed_report import sign_report

log = logging.getLogger(__name__)
_I = TypeVar("_I")

ServicesDep = Annotated[Services, Depends(get_services)]

router = APIRouter(
    prefix="/v1",
    tags=["verify"],
    dependencies=[public_if("public_verify", Role.verifier)],
    responses=problem_responses(400, 401, 403, 413, 422, 429),
)

# Examples: Tongsuo's SM2 test root, and the CFCA SADK sample SignedData (tests/vectors).
_EXAMPLE_PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIICADCCAaegAwIBAgIUXAScOKuIwcndzoWDMe9gSfUMi18wCgYIKoEcz1UBg3Uw\n"
    "TjEPMA0GA1UECgwGU00yLUNBMSQwIgYDVQQDDBtTTTIgY2VydGlmaWNhdGUgc2ln\n"
    "bmluZyBrZXkxFTATBgkqhkiG9w0BCQEWBmNhQHNtMjAgFw0yMzA0MjUwNjUxNTZa\n"
    "GA8yMDUwMDkxMDA2NTE1NlowTjEPMA0GA1UECgwGU00yLUNBMSQwIgYDVQQDDBtT\n"
    "TTIgY2VydGlmaWNhdGUgc2lnbmluZyBrZXkxFTATBgkqhkiG9w0BCQEWBmNhQHNt\n"
    "MjBaMBQGCCqBHM9VAYItBggqgRzPVQGCLQNCAARK4B/0TgZCiRUkIIyGRZaCE4a6\n"
    "pWvY5HTjYX+PoH3kpolGQ/KzjdALQ1ICYBO6LsSxzLwMUg3MvgDibGMZV9t3o2Aw\n"
    "XjAPBgNVHRMBAf8EBTADAQH/MAsGA1UdDwQEAwIBBjAdBgNVHQ4EFgQUPjscE6pU\n"
    "GFdHLY1byo1sbfpdspMwHwYDVR0jBBgwFoAUPjscE6pUGFdHLY1byo1sbfpdspMw\n"
    "CgYIKoEcz1UBg3UDRwAwRAIgJo06j/Ev2IGF8y6b11qiOo5YVO8dL4RrYZBJ9sSr\n"
    "0+4CIDZnMZrmAnQe190uLWstVsH70yj4Av3CkxQ1sfaGfniQ\n"
    "-----END CERTIFICATE-----\n"
)
_EXAMPLE_CMS = (
    "MIICgAYKKoEcz1UGAQQCAqCCAnAwggJsAgEBMQ4wDAYIKoEcz1UBgxEFADAjBgoqgRzPVQYBBAIBoBUEE0hlbGxv"
    "IFNlY3JldCBXb3JsZCGgggGNMIIBiTCCAS+gAwIBAgIFAKncGpAwCgYIKoEcz1UBg3UwKTEQMA4GA1UEChMHQWNt"
    "ZSBDbzEVMBMGA1UEAxMMRWRkYXJkIFN0YXJrMB4XDTI0MTExOTAwMTIyNVoXDTI1MTExOTAwMTIyNlowJTEQMA4G"
    "A1UEChMHQWNtZSBDbzERMA8GA1UEAxMISm9uIFNub3cwWTATBgcqhkjOPQIBBggqgRzPVQGCLQNCAATYcgrHXJmF"
    "O1/t/9WQ6GkCW6D0yDyd2ya5wRXjVAU08I9Oo6k99jB2MPauCn64W81APRCPHLlwWOtuIsmSmQhjo0gwRjAOBgNV"
    "HQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYIKwYBBQUHAwQwHwYDVR0jBBgwFoAUyBfYaeGJxaf9ST9aCRgotC+Mwvww"
    "CgYIKoEcz1UBg3UDSAAwRQIgRaF0PA74cCYKeu8pZ4VDQti+rE283Hq/tGXzXUzOWKUCIQDl3z1boZxtRscbnOGO"
    "Xg1NY+yoY2lz5b63kGOTkn/SxzGBoDCBnQIBATAyMCkxEDAOBgNVBAoTB0FjbWUgQ28xFTATBgNVBAMTDEVkZGFy"
    "ZCBTdGFyawIFAKncGpAwDAYIKoEcz1UBgxEFADANBgkqgRzPVQGCLQEFAARHMEUCIQCl145xtYc7QWTymATxUGbL"
    "fF1mlPlyMoIKSp9alu14UQIgQSV/Ll3yYCyXSNxhPelz8Nsbxopky+Pt56Al54rv3p0="
)
# Shape only: this signature is not by the example certificate's key (the report says so).
_EXAMPLE_SIGNATURE = (
    "MEUCICUrWyYNXg5sq24oNata7CCTGjUw6iSi0GgvVMxUUmuoAiEAi5D40Ury3cnf81x6N4ymyuWPQfRv8yYk"
    "TNWp5bRvmvU="
)

# A report as /v1/verify/cms returns it for input that is not a CMS (abridged checks).
_REPORT_EXAMPLE: dict[str, Any] = {
    "schema_version": "1",
    "validated_object": "cms_signature",
    "indication": "TOTAL_FAILED",
    "sub_indication": "FORMAT_FAILURE",
    "validation_time": "2026-01-01T00:00:00Z",
    "time_source": "current",
    "checks": [
        {
            "name": "format",
            "status": "failed",
            "sub_indication": "FORMAT_FAILURE",
            "message": "CMS ContentInfo does not parse",
        },
        {
            "name": "signature",
            "status": "not_performed",
            "message": "not performed: the input is not a well-formed CMS SignedData",
        },
    ],
}
_REPORT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": _REPORT_EXAMPLE}}}
}
_BATCH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {
                "example": {
                    "results": [
                        {"report": _REPORT_EXAMPLE, "error": None},
                        {
                            "report": None,
                            "error": {
                                "code": "bad_request_asn1",
                                "detail": "certificate is not valid DER",
                            },
                        },
                    ]
                }
            }
        }
    }
}

CertificatePem = Annotated[
    str, Field(min_length=1, max_length=65536, description="one certificate, PEM")
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Bounds on revocation input: a path is short, and each item is parsed in full.
MAX_REVOCATION_ITEMS = 32


class WithRevocation(_Request):
    crls_b64: list[Base64] = Field(
        default_factory=list,
        max_length=MAX_REVOCATION_ITEMS,
        description="CRLs (DER) to use besides the service's own",
    )
    ocsp_responses_b64: list[Base64] = Field(
        default_factory=list,
        max_length=MAX_REVOCATION_ITEMS,
        description="OCSPResponse messages (DER) to use",
    )
    revocation_mode: RevocationMode = Field(
        RevocationMode.SOFT_FAIL,
        description="soft-fail: missing data is accepted and reported; hard-fail: required "
        "where a certificate names a CRL/OCSP location; require: required for every "
        "certificate (missing: TRY_LATER); none: not checked",
    )


class SignatureInput(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "certificate_pem": _EXAMPLE_PEM,
                    "data_b64": "aGVsbG8gd29ybGQ=",
                    "signature_b64": _EXAMPLE_SIGNATURE,
                    "signer_id": "1234567812345678",
                    "verify_level": 1,
                }
            ]
        }
    )

    certificate_pem: CertificatePem
    data_b64: Base64 | None = None
    digest_b64: Base64 | None = Field(
        None, description="what was signed, precomputed: SM2 e = SM3(Z || M); others the hash"
    )
    signature_b64: Base64
    signature_encoding: SignatureEncoding = SignatureEncoding.DER
    signer_id: SignerId | None = None
    verify_level: VerifyLevel = Field(
        VerifyLevel.CHAIN,
        description="0 signature only, 1 also chain and validity, 2 also revocation",
    )

    @model_validator(mode="after")
    def _one_input(self) -> SignatureInput:
        if (self.data_b64 is None) == (self.digest_b64 is None):
            raise ValueError("give exactly one of data_b64 and digest_b64")
        return self


class VerifySignatureRequest(SignatureInput, WithRevocation):
    pass


class CmsInput(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cms_b64": _EXAMPLE_CMS}]})

    cms_b64: Base64 = Field(description="ContentInfo with SignedData, DER or BER")
    data_b64: Base64 | None = Field(None, description="the content, for a detached CMS")


class VerifyCmsRequest(CmsInput, WithRevocation):
    pass


class VerifyResult(BaseModel):
    """The answer with ``?signed=true`` (and, on ``/verify/cms``, ``?evidence=true``)."""

    report: ValidationReport
    evidence: EvidenceBundle | None = Field(
        None, description="trust-evidence/1: the material to re-verify offline"
    )
    signed_report_b64: str | None = Field(
        None,
        description="CMS SignedData (DER) over the report's canonical JSON, by the "
        "service's report-signing key, its chain included",
    )


# Items per batch: each is a full validation (~ms), so a batch stays within seconds.
MAX_BATCH = 100


class VerifySignatureBatch(WithRevocation):
    items: list[SignatureInput] = Field(min_length=1, max_length=MAX_BATCH)


class VerifyCmsBatch(WithRevocation):
    items: list[CmsInput] = Field(min_length=1, max_length=MAX_BATCH)


class BatchError(BaseModel):
    code: str = Field(description="the stable error code, as in a problem+json answer")
    detail: str


class BatchItem(BaseModel):
    """Exactly one of ``report`` and ``error``."""

    report: ValidationReport | None = None
    error: BatchError | None = None


class BatchResult(BaseModel):
    results: list[BatchItem] = Field(description="one per item, in the order given")


class VerifyCertificateRequest(WithRevocation):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"certificate_pem": _EXAMPLE_PEM, "chain_pem": None}]}
    )

    certificate_pem: CertificatePem
    chain_pem: str | None = Field(
        None, max_length=524288, description="intermediate certificates, PEM, any order"
    )
    at: AwareDatetime | None = Field(None, description="status at this time; default now")


class VerifyTimestampRequest(WithRevocation):
    # Shape only: a SignedData that holds no TSTInfo (its report is FORMAT_FAILURE).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token_b64": _EXAMPLE_CMS, "data_b64": "aGVsbG8gd29ybGQ="}]
        }
    )

    token_b64: Base64 = Field(description="TimeStampToken (CMS ContentInfo), DER")
    data_b64: Base64 | None = Field(None, description="the data the token should stamp")
    digest_b64: Base64 | None = Field(
        None, description="or its hash, in the token's imprint algorithm"
    )

    @model_validator(mode="after")
    def _at_most_one_input(self) -> VerifyTimestampRequest:
        if self.data_b64 is not None and self.digest_b64 is not None:
            raise ValueError("give at most one of data_b64 and digest_b64")
        return self


class ParseCertificateRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"certificate_pem": _EXAMPLE_PEM}]})

    certificate_pem: CertificatePem


class CertificateFields(BaseModel):
    """ParseCert: the fields of a certificate, nothing verified."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "v3",
                    "subject": "emailAddress=ca@sm2,CN=SM2 certificate signing key,O=SM2-CA",
                    "issuer": "emailAddress=ca@sm2,CN=SM2 certificate signing key,O=SM2-CA",
                    "serial": "5c049c38ab88c1c9ddce858331ef6049f50c8b5f",
                    "not_before": "2023-04-25T06:51:56Z",
                    "not_after": "2050-09-10T06:51:56Z",
                    "signature_algorithm": "sm3_sm2 (1.2.156.10197.1.501)",
                    "public_key_algorithm": "sm2 (1.2.156.10197.1.301)",
                    "curve": "sm2p256v1 (1.2.156.10197.1.301)",
                    "key_usage": ["crl_sign", "key_cert_sign"],
                    "extended_key_usage": [],
                    "subject_alt_names": [],
                    "ca": True,
                    "subject_key_identifier": "3e3b1c13aa541857472d8d5bca8d6c6dfa5db293",
                    "authority_key_identifier": "3e3b1c13aa541857472d8d5bca8d6c6dfa5db293",
                    "sha256_fingerprint": (
                        "15905d494b12ca56ea4c752cd711fb334e50a30514f21495fd869fd150b53d1b"
                    ),
                }
            ]
        }
    )

    version: str
    subject: str
    issuer: str
    serial: str = Field(description="lower-case hex")
    not_before: AwareDatetime
    not_after: AwareDatetime
    signature_algorithm: str
    public_key_algorithm: str
    curve: str | None = None
    key_usage: list[str] = Field(default_factory=list)
    extended_key_usage: list[str] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)
    ca: bool
    subject_key_identifier: str | None = None
    authority_key_identifier: str | None = None
    sha256_fingerprint: str


@dataclass
class _Trust:
    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate]  # the service's issuing CAs
    crls: list[bytes]  # the request's, then the service CAs' current CRLs
    ocsps: list[bytes]
    ocsp_source: OcspSource | None = None  # the service CAs' OCSP responders


class _ServiceOcsp:
    """The service's own OCSP responders, asked in process (``OcspSource``) about
    certificates its CAs issued."""

    def __init__(self, authority: CertificateAuthority, cas: Sequence[x509.Certificate]) -> None:
        self._authority = authority
        self._cas = frozenset(c.dump() for c in cas)

    def ocsp(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        if issuer.dump() not in self._cas:
            return None
        request = ocsp_request(certificate, issuer)
        try:
            response = self._authority.ocsp_cached(request) or self._authority.ocsp(request)
        except TrustError as exc:  # the CRL still covers it
            log.warning("no OCSP answer from the service CA: %s", exc.detail)
            return None
        if ocsp.OCSPResponse.load(response)["response_status"].native != "successful":
            return None
        return response


def _trust(services: Services, body: WithRevocation) -> _Trust:
    """Anchors: the service's root CAs and configured roots; intermediates: its issuing
    CAs; revocation data: the request's plus, unless ``none``, the service CAs' CRLs and
    their OCSP responders (asked during validation about the certificates they issued)."""
    trust = _Trust([], [], list(body.crls_b64), list(body.ocsp_responses_b64))
    try:
        authority = services.ca()
        for ca in authority.list_cas():
            cert = load_certificate(ca.certificate_pem.encode())
            (trust.anchors if ca.parent_id is None else trust.intermediates).append(cert)
            if body.revocation_mode is not RevocationMode.NONE:
                try:
                    trust.crls.append(authority.current_crl(ca.id))
                except TrustError as exc:  # that CA's certificates lack data; others do not
                    log.warning("no current CRL for CA %s: %s", ca.id, exc.detail)
        if body.revocation_mode is not RevocationMode.NONE:
            trust.ocsp_source = _ServiceOcsp(authority, [*trust.anchors, *trust.intermediates])
    except TrustError as exc:
        # No key store (no master key) means no CA: external roots still work.
        log.warning("service CAs unavailable as trust anchors: %s", exc.detail)
    for path in services.settings.trust_anchor_files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read trust anchor file {path}: {exc}") from exc
        trust.anchors.extend(load_certificates(data))
    return trust


_CHECKER = TokenChecker()


def _signature_report(
    item: SignatureInput, body: WithRevocation, trust: _Trust, services: Services
) -> ValidationReport:
    return verify_raw_signature(
        item.certificate_pem.encode(),
        item.signature_b64,
        data=item.data_b64,
        digest=item.digest_b64,
        signer_id=item.signer_id.encode() if item.signer_id is not None else None,
        signature_encoding=item.signature_encoding,
        verify_level=item.verify_level,
        anchors=trust.anchors,
        intermediates=trust.intermediates,
        crls=trust.crls,
        ocsps=trust.ocsps,
        revocation_mode=body.revocation_mode,
        clock=services.clock,
        ocsp_source=trust.ocsp_source,
    )


def _cms_report(
    item: CmsInput, body: WithRevocation, trust: _Trust, services: Services
) -> CmsVerification:
    return verify_cms_detailed(
        item.cms_b64,
        item.data_b64,
        anchors=trust.anchors,
        intermediates=trust.intermediates,
        crls=trust.crls,
        ocsps=trust.ocsps,
        revocation_mode=body.revocation_mode,
        clock=services.clock,
        ocsp_source=trust.ocsp_source,
        timestamp_checker=_CHECKER,
    )


SignedQuery = Annotated[
    bool,
    Query(description="also return the report as CMS signed by the service (signed_report_b64)"),
]
_SIGNED_NOTE = (
    " With `signed=true` the answer is `{report, signed_report_b64}`: CMS SignedData over "
    "the report's canonical JSON by the service's report-signing key."
)


def _answer(
    report: ValidationReport,
    services: Services,
    request: Request,
    *,
    signed: bool,
    evidence: EvidenceBundle | None = None,
) -> ValidationReport | VerifyResult:
    if not signed and evidence is None:
        return report
    signed_b64 = None
    if signed:
        found = _report_signer(services, request)
        cms = sign_report(
            report, found.signer, chain=found.chain, signing_time=services.clock.now()
        )
        signed_b64 = base64.b64encode(cms).decode()
    return VerifyResult(report=report, evidence=evidence, signed_report_b64=signed_b64)


_signer_lock = threading.Lock()


def _report_signer(services: Services, request: Request) -> ReportSigner:
    """One per app, made on first use (``api.report_signing``)."""
    state = request.app.state
    with _signer_lock:
        found: ReportSigner | None = getattr(state, "report_signer", None)
        if found is None:
            found = ensure_report_signer(services.keystore(), services.ca(), services.settings)
            state.report_signer = found
        return found


@router.post(
    "/verify/signature",
    response_model=ValidationReport | VerifyResult,
    responses=_REPORT_RESPONSE,
    summary="Verify a raw signature under a certificate (GM/T 0029 VerifySignedData)",
    description=_SIGNED_NOTE.strip(),
)
def verify_signature(
    body: VerifySignatureRequest,
    services: ServicesDep,
    request: Request,
    signed: SignedQuery = False,
) -> ValidationReport | VerifyResult:
    report = _signature_report(body, body, _trust(services, body), services)
    return _answer(report, services, request, signed=signed)


@router.post(
    "/verify/cms",
    response_model=ValidationReport | VerifyResult,
    responses=_REPORT_RESPONSE,
    summary="Verify a CMS SignedData (GM/T 0029 VerifySignedMessage)",
    description="A CMS that does not parse gives a 200 report TOTAL_FAILED/FORMAT_FAILURE. "
    "With `evidence=true` the answer is `{report, evidence}`: the bundle (chain, CRLs, OCSP "
    "responses, timestamps) re-verifies the signature later without the service." + _SIGNED_NOTE,
)
def verify_cms_route(
    body: VerifyCmsRequest,
    services: ServicesDep,
    request: Request,
    evidence: Annotated[bool, Query(description="also return the evidence bundle")] = False,
    signed: SignedQuery = False,
) -> ValidationReport | VerifyResult:
    trust = _trust(services, body)
    done = _cms_report(body, body, trust, services)
    bundle = (
        build_evidence(
            body.cms_b64, done, crls=trust.crls, ocsps=trust.ocsps, created_at=services.clock.now()
        )
        if evidence
        else None
    )
    return _answer(done.report, services, request, signed=signed, evidence=bundle)


@router.post(
    "/verify/timestamp",
    response_model=ValidationReport | VerifyResult,
    responses=_REPORT_RESPONSE,
    summary="Verify a time-stamp token (RFC 3161 / GM/T 0033) over data or a digest",
    description="A token that does not parse gives a 200 report TOTAL_FAILED/FORMAT_FAILURE. "
    "The TSA certificate's path is validated now; the token's genTime is the proven time."
    + _SIGNED_NOTE,
)
def verify_timestamp_route(
    body: VerifyTimestampRequest,
    services: ServicesDep,
    request: Request,
    signed: SignedQuery = False,
) -> ValidationReport | VerifyResult:
    trust = _trust(services, body)
    report = verify_timestamp(
        body.token_b64,
        checker=_CHECKER,
        data=body.data_b64,
        digest=body.digest_b64,
        anchors=trust.anchors,
        intermediates=trust.intermediates,
        crls=trust.crls,
        ocsps=trust.ocsps,
        revocation_mode=body.revocation_mode,
        clock=services.clock,
        ocsp_source=trust.ocsp_source,
    )
    return _answer(report, services, request, signed=signed)


@router.post(
    "/verify/certificate",
    response_model=ValidationReport | VerifyResult,
    responses=_REPORT_RESPONSE,
    summary="Validate a certificate: chain, validity, revocation (GM/T 0029 ValidateCert)",
    description=_SIGNED_NOTE.strip(),
)
def verify_certificate(
    body: VerifyCertificateRequest,
    services: ServicesDep,
    request: Request,
    signed: SignedQuery = False,
) -> ValidationReport | VerifyResult:
    trust = _trust(services, body)
    chain = load_certificates(body.chain_pem.encode()) if body.chain_pem else []
    report = validate_certificate(
        body.certificate_pem.encode(),
        [*chain, *trust.intermediates],
        anchors=trust.anchors,
        at=body.at,
        crls=trust.crls,
        ocsps=trust.ocsps,
        revocation_mode=body.revocation_mode,
        clock=services.clock,
        ocsp_source=trust.ocsp_source,
    )
    return _answer(report, services, request, signed=signed)


def _batch(
    items: Sequence[_I],
    verify: Callable[[_I], ValidationReport],
) -> BatchResult:
    """Each item's report, or the problem that refused it; one item does not stop others."""
    results = []
    for item in items:
        try:
            results.append(BatchItem(report=verify(item)))
        except TrustError as exc:
            results.append(BatchItem(error=BatchError(code=exc.code, detail=exc.detail)))
    return BatchResult(results=results)


@router.post(
    "/verify/signature:batch",
    response_model=BatchResult,
    responses=_BATCH_RESPONSE,
    summary=f"Verify up to {MAX_BATCH} raw signatures (VerifySignedData), in order",
    description="Revocation input and mode apply to every item. An item that is not "
    "well formed gets an error in its place, the others their reports.",
)
def verify_signature_batch(body: VerifySignatureBatch, services: ServicesDep) -> BatchResult:
    trust = _trust(services, body)
    return _batch(body.items, lambda item: _signature_report(item, body, trust, services))


@router.post(
    "/verify/cms:batch",
    response_model=BatchResult,
    responses=_BATCH_RESPONSE,
    summary=f"Verify up to {MAX_BATCH} CMS SignedData (VerifySignedMessage), in order",
    description="Revocation input and mode apply to every item.",
)
def verify_cms_batch(body: VerifyCmsBatch, services: ServicesDep) -> BatchResult:
    trust = _trust(services, body)
    return _batch(body.items, lambda item: _cms_report(item, body, trust, services).report)


@router.post(
    "/certificates:parse",
    response_model=CertificateFields,
    summary="Parse a certificate into its fields (GM/T 0029 ParseCert); nothing is verified",
)
def parse_certificate(body: ParseCertificateRequest) -> CertificateFields:
    cert = load_certificate(body.certificate_pem.encode())
    info = certificate_info(cert)
    spki = cert.public_key
    params = spki["algorithm"]["parameters"]
    san = cert.subject_alt_name_value
    return CertificateFields(
        version=cert["tbs_certificate"]["version"].native,
        subject=info.subject,
        issuer=info.issuer,
        serial=info.serial,
        not_before=info.not_before,
        not_after=info.not_after,
        signature_algorithm=_oid_text(cert["signature_algorithm"]["algorithm"]),
        public_key_algorithm=_oid_text(spki["algorithm"]["algorithm"]),
        curve=_oid_text(params.chosen) if getattr(params, "name", None) == "named" else None,
        key_usage=sorted(cert.key_usage_value.native) if cert.key_usage_value else [],
        extended_key_usage=(
            list(cert.extended_key_usage_value.native) if cert.extended_key_usage_value else []
        ),
        subject_alt_names=[f"{n.name}:{n.native}" for n in san] if san else [],
        ca=cert.ca,
        subject_key_identifier=cert.key_identifier.hex() if cert.key_identifier else None,
        authority_key_identifier=(
            cert.authority_key_identifier.hex() if cert.authority_key_identifier else None
        ),
        sha256_fingerprint=info.sha256_fingerprint,
    )


def _oid_text(oid: Any) -> str:
    """'name (dotted)' when asn1crypto knows the OID, else the dotted form."""
    name, dotted = oid.native, oid.dotted
    return dotted if name == dotted else f"{name} ({dotted})"
