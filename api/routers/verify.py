"""Verification (GM/T 0029): signatures, CMS SignedData and certificates as ETSI
EN 319 102-1 validation reports, and certificate parsing.

Public while ``settings.public_verify`` is true, else the ``verifier`` role. Trust
anchors are the service's own root CAs (its issuing CAs are offered as intermediates)
plus the roots in ``settings.trust_anchor_files``.

A request that is not well formed (bad base64, a PEM that is not a certificate) is a
4xx problem. A CMS that does not parse is different: it is the object under
validation, so the answer is a 200 report TOTAL_FAILED/FORMAT_FAILURE, as for any other
verdict on it; clients read one report format whatever was wrong with the signature.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from asn1crypto import x509
from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.deps import Services, get_services
from api.errors import problem_responses
from api.routers.keys import Base64, SignerId
from api.security import public_if
from trust.auth import Role
from trust.errors import ConfigurationError, TrustError
from trust.validation import (
    RevocationMode,
    SignatureEncoding,
    ValidationReport,
    VerifyLevel,
    validate_certificate,
    verify_cms,
    verify_raw_signature,
)
from trust.validation.certs import certificate_info, load_certificate, load_certificates

log = logging.getLogger(__name__)

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

CertificatePem = Annotated[
    str, Field(min_length=1, max_length=65536, description="one certificate, PEM")
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerifySignatureRequest(_Request):
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
    def _one_input(self) -> VerifySignatureRequest:
        if (self.data_b64 is None) == (self.digest_b64 is None):
            raise ValueError("give exactly one of data_b64 and digest_b64")
        return self


class VerifyCmsRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cms_b64": _EXAMPLE_CMS}]})

    cms_b64: Base64 = Field(description="ContentInfo with SignedData, DER or BER")
    data_b64: Base64 | None = Field(None, description="the content, for a detached CMS")


class VerifyCertificateRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"certificate_pem": _EXAMPLE_PEM, "chain_pem": None}]}
    )

    certificate_pem: CertificatePem
    chain_pem: str | None = Field(
        None, max_length=524288, description="intermediate certificates, PEM, any order"
    )
    at: AwareDatetime | None = Field(None, description="status at this time; default now")


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


def _anchors(services: Services) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(anchors, intermediates): the service's root and issuing CAs, and configured roots."""
    anchors: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    try:
        for ca in services.ca().list_cas():
            cert = load_certificate(ca.certificate_pem.encode())
            (anchors if ca.parent_id is None else intermediates).append(cert)
    except TrustError as exc:
        # No key store (no master key) means no CA: external roots still work.
        log.warning("service CAs unavailable as trust anchors: %s", exc.detail)
    for path in services.settings.trust_anchor_files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read trust anchor file {path}: {exc}") from exc
        anchors.extend(load_certificates(data))
    return anchors, intermediates


@router.post(
    "/verify/signature",
    response_model=ValidationReport,
    responses=_REPORT_RESPONSE,
    summary="Verify a raw signature under a certificate (GM/T 0029 VerifySignedData)",
)
def verify_signature(body: VerifySignatureRequest, services: ServicesDep) -> ValidationReport:
    anchors, intermediates = _anchors(services)
    return verify_raw_signature(
        body.certificate_pem.encode(),
        body.signature_b64,
        data=body.data_b64,
        digest=body.digest_b64,
        signer_id=body.signer_id.encode() if body.signer_id is not None else None,
        signature_encoding=body.signature_encoding,
        verify_level=body.verify_level,
        anchors=anchors,
        intermediates=intermediates,
        # No CRL/OCSP input on this route: revocation data missing is not a failure.
        revocation_mode=RevocationMode.SOFT_FAIL,
        clock=services.clock,
    )


@router.post(
    "/verify/cms",
    response_model=ValidationReport,
    responses=_REPORT_RESPONSE,
    summary="Verify a CMS SignedData (GM/T 0029 VerifySignedMessage)",
    description="A CMS that does not parse gives a 200 report TOTAL_FAILED/FORMAT_FAILURE.",
)
def verify_cms_route(body: VerifyCmsRequest, services: ServicesDep) -> ValidationReport:
    anchors, intermediates = _anchors(services)
    return verify_cms(
        body.cms_b64,
        body.data_b64,
        anchors=anchors,
        intermediates=intermediates,
        revocation_mode=RevocationMode.SOFT_FAIL,
        clock=services.clock,
    )


@router.post(
    "/verify/certificate",
    response_model=ValidationReport,
    responses=_REPORT_RESPONSE,
    summary="Validate a certificate: chain, validity, revocation (GM/T 0029 ValidateCert)",
)
def verify_certificate(body: VerifyCertificateRequest, services: ServicesDep) -> ValidationReport:
    anchors, intermediates = _anchors(services)
    chain = load_certificates(body.chain_pem.encode()) if body.chain_pem else []
    return validate_certificate(
        body.certificate_pem.encode(),
        [*chain, *intermediates],
        anchors=anchors,
        at=body.at,
        clock=services.clock,
    )


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
