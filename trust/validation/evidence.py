"""Evidence bundles: the validation material of a CMS signature, to re-verify it later
without the service.

A bundle is JSON (``EvidenceBundle``, format ``trust-evidence/1``): the SHA-256 of the
CMS it is about, the time and time source of the original validation, and DER items in
base64 (certificates: the CMS's, the timestamp tokens', the intermediates and anchors
offered; CRLs and OCSP responses offered, the service's own included; the signature
timestamp tokens found). Everything the original validation could use is in it, so
``reverify`` with only the bundle, the CMS, the detached content and a trust decision
reaches the same verdict. The bundle names which certificates were trust anchors, but
trusting them stays the verifier's choice: ``reverify`` takes the anchors to use and
only offers the bundle's certificates as intermediates.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

from asn1crypto import x509
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trust.clock import Clock
from trust.errors import BadRequest
from trust.validation.certs import CertificateInput, CrlInput, OcspInput, load_certificate
from trust.validation.cms_report import CmsVerification, verify_cms
from trust.validation.path import RevocationMode
from trust.validation.report import TimeSource, ValidationReport
from trust.validation.timestamps import TimestampChecker

EVIDENCE_FORMAT: Final = "trust-evidence/1"


class EvidenceBundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["trust-evidence/1"] = EVIDENCE_FORMAT
    created_at: AwareDatetime
    cms_sha256: str = Field(description="SHA-256 (hex) of the CMS this bundle is about")
    validation_time: AwareDatetime
    time_source: TimeSource
    certificates_b64: tuple[str, ...] = Field(description="DER certificates, no order")
    trust_anchors_sha256: tuple[str, ...] = Field(
        description="SHA-256 fingerprints of the certificates used as trust anchors"
    )
    crls_b64: tuple[str, ...] = ()
    ocsp_responses_b64: tuple[str, ...] = ()
    timestamps_b64: tuple[str, ...] = Field(
        default=(), description="the signature timestamp tokens (also inside the CMS)"
    )

    def certificates(self) -> list[x509.Certificate]:
        return [load_certificate(_decode(c)) for c in self.certificates_b64]

    def anchors(self) -> list[x509.Certificate]:
        """The bundle's certificates that the original validation trusted."""
        wanted = set(self.trust_anchors_sha256)
        return [c for c in self.certificates() if hashlib.sha256(c.dump()).hexdigest() in wanted]


def _encode(der: bytes) -> str:
    return base64.b64encode(der).decode()


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise BadRequest("the evidence bundle holds invalid base64") from None


def _der(item: bytes | CrlInput | OcspInput) -> bytes:
    return item if isinstance(item, bytes) else item.dump()


def build_evidence(
    cms_der: bytes,
    verification: CmsVerification,
    *,
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    created_at: datetime,
) -> EvidenceBundle:
    report = verification.report
    certificates = list(dict.fromkeys(c.dump() for c in verification.certificates))
    chains = [c for each in report.signers or (report,) for c in each.chain]
    anchors = tuple(dict.fromkeys(c.sha256_fingerprint for c in chains if c.trust_anchor))
    return EvidenceBundle(
        created_at=created_at,
        cms_sha256=hashlib.sha256(cms_der).hexdigest(),
        validation_time=report.validation_time,
        time_source=report.time_source,
        certificates_b64=tuple(map(_encode, certificates)),
        trust_anchors_sha256=anchors,
        crls_b64=tuple(_encode(_der(c)) for c in dict.fromkeys(map(_der, crls))),
        ocsp_responses_b64=tuple(
            _encode(o) for o in dict.fromkeys([*map(_der, ocsps), *verification.ocsps])
        ),
        timestamps_b64=tuple(map(_encode, verification.timestamps)),
    )


def reverify(
    cms_der: bytes,
    data: bytes | None,
    bundle: EvidenceBundle,
    *,
    anchors: Sequence[CertificateInput],
    timestamp_checker: TimestampChecker | None = None,
    at: datetime | None = None,
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    clock: Clock | None = None,
) -> ValidationReport:
    """``verify_cms`` from the bundle's material only. ``at`` as in ``verify_cms``; a
    signature timestamp in the CMS gives the proven time again by itself."""
    if hashlib.sha256(cms_der).hexdigest() != bundle.cms_sha256:
        raise BadRequest("the evidence bundle is about another CMS")
    return verify_cms(
        cms_der,
        data,
        anchors=anchors,
        intermediates=bundle.certificates(),
        at=at,
        crls=[_decode(c) for c in bundle.crls_b64],
        ocsps=[_decode(o) for o in bundle.ocsp_responses_b64],
        revocation_mode=revocation_mode,
        clock=clock,
        timestamp_checker=timestamp_checker,
    )
