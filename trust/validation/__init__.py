"""Certificate path validation (RFC 5280, SM2 included), ETSI EN 319 102-1 validation
reports, SM2 diagnostics and the GM/T 0029 verification functions built on them.

Modules: ``sm2_validator`` (SM3withSM2 plug-in for pyhanko-certvalidator), ``path``
(``PathValidator``), ``report`` (pydantic report model and ``combine``), ``diagnostics``
(hints after an SM2 failure), ``render`` (text), ``verify`` (``verify_raw_signature``,
``validate_certificate``), ``cms_report`` (``verify_cms``), ``timestamps`` (time-stamp
tokens: the ``TimestampChecker`` protocol, ``verify_timestamp``), ``evidence`` (bundles
to re-verify offline), ``signed_report`` (a report as CMS), ``certs`` (parsing and
certificate summaries), ``ocsp_source`` (OCSP answers from in-process responders).
"""

from __future__ import annotations

from trust.validation.cms_report import CmsVerification, verify_cms, verify_cms_detailed
from trust.validation.diagnostics import (
    CiphertextForm,
    HintCode,
    SignatureEncoding,
    diagnose_sm2_ciphertext,
    diagnose_sm2_signature,
)
from trust.validation.path import (
    PathFailure,
    PathRequest,
    PathResult,
    PathValidator,
    RevocationMode,
)
from trust.validation.render import render_text
from trust.validation.report import (
    SCHEMA_VERSION,
    CertificateInfo,
    Check,
    CheckName,
    CheckStatus,
    CmsCheck,
    Finding,
    Indication,
    RevocationEvidence,
    SubIndication,
    TimeSource,
    TimestampInfo,
    ValidatedObject,
    ValidationReport,
    combine,
)
from trust.validation.sm2_validator import SM2SignatureValidator
from trust.validation.timestamps import TimestampChecker, TokenCheck, verify_timestamp
from trust.validation.verify import VerifyLevel, validate_certificate, verify_raw_signature

__all__ = [
    "SCHEMA_VERSION",
    "CertificateInfo",
    "Check",
    "CheckName",
    "CheckStatus",
    "CiphertextForm",
    "CmsCheck",
    "CmsVerification",
    "Finding",
    "HintCode",
    "Indication",
    "PathFailure",
    "PathRequest",
    "PathResult",
    "PathValidator",
    "RevocationEvidence",
    "RevocationMode",
    "SM2SignatureValidator",
    "SignatureEncoding",
    "SubIndication",
    "TimeSource",
    "TimestampChecker",
    "TimestampInfo",
    "TokenCheck",
    "ValidatedObject",
    "ValidationReport",
    "VerifyLevel",
    "combine",
    "diagnose_sm2_ciphertext",
    "diagnose_sm2_signature",
    "render_text",
    "validate_certificate",
    "verify_cms",
    "verify_cms_detailed",
    "verify_raw_signature",
    "verify_timestamp",
]
