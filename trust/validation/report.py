"""The validation report: ETSI EN 319 102-1 indications over a list of typed checks.

A report says what was validated, at which time and on what grounds (the time is the
current time, a proven time from a timestamp, or a time the caller asked about), who the
signer is, which chain and which revocation evidence were used, and the list of checks,
each ``passed``, ``failed``, ``indeterminate`` or ``not_performed`` with the reason. A
pass therefore means exactly "every check that was performed passed": the not-performed
checks say what it does not cover (verify level 0 checks no chain, for instance).

The main indication is never set by hand: ``combine`` derives it from the checks, and a
report whose indication disagrees with its checks does not validate.

Precedence (``combine``):

1. any ``failed`` check gives ``TOTAL_FAILED``;
2. otherwise any ``indeterminate`` check gives ``INDETERMINATE``;
3. otherwise, if at least one check passed, ``TOTAL_PASSED``; a report in which nothing
   was performed is ``INDETERMINATE``/``GENERIC`` (it proves nothing).

The sub-indication is that of the deciding check whose sub-indication comes first in
``SUB_INDICATION_PRECEDENCE`` (structure, then integrity, then the signature, then the
signer's binding, then chain and status, then time, then availability); equal ranks go
to the check listed first. The order is fixed, so the same checks always give the same
verdict.

Seal-specific sub-indications (``seals/verify.py``) are members of the same enum, so seal
checks can be carried unchanged: a seal ``not_checked`` is a ``not_performed`` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Final = "1"


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    # ETSI EN 319 102-1 §5.1.3, TOTAL_FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    # ETSI EN 319 102-1 §5.1.3, INDETERMINATE
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    GENERIC = "GENERIC"
    # Electronic seals (GB/T 38540), the values seals/verify.py uses
    UNSUPPORTED_SEAL_VERSION = "UNSUPPORTED_SEAL_VERSION"
    DATA_HASH_MISMATCH = "DATA_HASH_MISMATCH"
    SEAL_MAKER_SIGNATURE_INVALID = "SEAL_MAKER_SIGNATURE_INVALID"
    SIGNER_NOT_IN_SEAL = "SIGNER_NOT_IN_SEAL"
    SEAL_EXPIRED = "SEAL_EXPIRED"
    SEAL_NOT_YET_VALID = "SEAL_NOT_YET_VALID"
    SEAL_REVOKED = "SEAL_REVOKED"
    SEAL_SUSPENDED_AT_SIGNING_TIME = "SEAL_SUSPENDED_AT_SIGNING_TIME"
    SEAL_NOT_ACTIVE_AT_SIGNING_TIME = "SEAL_NOT_ACTIVE_AT_SIGNING_TIME"
    SEAL_SUSPENDED = "SEAL_SUSPENDED"
    SEAL_NOT_ACTIVE = "SEAL_NOT_ACTIVE"
    TIMESTAMP_UNPARSEABLE = "TIMESTAMP_UNPARSEABLE"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"


S = SubIndication
SUB_INDICATION_PRECEDENCE: Final[tuple[SubIndication, ...]] = (
    # what the object is
    S.FORMAT_FAILURE,
    S.UNSUPPORTED_SEAL_VERSION,
    S.SIGNED_DATA_NOT_FOUND,
    # whether the signed bytes are the ones presented
    S.HASH_FAILURE,
    S.DATA_HASH_MISMATCH,
    # whether the signature is mathematically valid
    S.SIG_CRYPTO_FAILURE,
    S.SEAL_MAKER_SIGNATURE_INVALID,
    # who signed, and whether that key is bound to a trusted identity
    S.NO_SIGNING_CERTIFICATE_FOUND,
    S.SIGNER_NOT_IN_SEAL,
    S.NO_CERTIFICATE_CHAIN_FOUND,
    S.CERTIFICATE_CHAIN_GENERAL_FAILURE,
    S.CHAIN_CONSTRAINTS_FAILURE,
    S.SIG_CONSTRAINTS_FAILURE,
    S.CRYPTO_CONSTRAINTS_FAILURE,
    S.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    # status and time
    S.REVOKED,
    S.REVOKED_NO_POE,
    S.REVOKED_CA_NO_POE,
    S.EXPIRED,
    S.NOT_YET_VALID,
    S.OUT_OF_BOUNDS_NO_POE,
    S.OUT_OF_BOUNDS_NOT_REVOKED,
    S.SEAL_REVOKED,
    S.SEAL_SUSPENDED_AT_SIGNING_TIME,
    S.SEAL_NOT_ACTIVE_AT_SIGNING_TIME,
    S.SEAL_EXPIRED,
    S.SEAL_NOT_YET_VALID,
    S.SEAL_SUSPENDED,
    S.SEAL_NOT_ACTIVE,
    S.TIMESTAMP_UNPARSEABLE,
    S.TIMESTAMP_INVALID,
    S.TIMESTAMP_ORDER_FAILURE,
    S.NO_POE,
    # missing information that may arrive later
    S.TRY_LATER,
    S.GENERIC,
)
del S
_RANK = {sub: i for i, sub in enumerate(SUB_INDICATION_PRECEDENCE)}


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"  # ran, but could not conclude (missing data, no proof)
    NOT_PERFORMED = "not_performed"  # did not run; the message says why


class CheckName(StrEnum):
    """Stable names of the checks this package performs; other domains (seals) add theirs."""

    FORMAT = "format"
    SIGNATURE = "signature"
    CERTIFICATE_CHAIN = "certificate_chain"
    CERTIFICATE_VALIDITY = "certificate_validity"
    REVOCATION = "revocation"
    KEY_USAGE = "key_usage"


class CmsCheck(StrEnum):
    """Check names of signed objects (CMS SignedData, time-stamp tokens), alongside
    ``CheckName``."""

    MESSAGE_DIGEST = "message_digest"
    MESSAGE_IMPRINT = "message_imprint"  # a time-stamp token's hash of what it stamps
    SIGNER_CERTIFICATE = "signer_certificate"
    SIGNING_CERTIFICATE_ATTRIBUTE = "signing_certificate_attribute"
    TIMESTAMP = "timestamp"


class ValidatedObject(StrEnum):
    RAW_SIGNATURE = "raw_signature"
    CERTIFICATE = "certificate"
    CMS_SIGNATURE = "cms_signature"
    SEAL = "seal"
    TIMESTAMP = "timestamp"


class TimeSource(StrEnum):
    """What the validation time stands for."""

    CURRENT = "current"  # now: no proof the object existed earlier
    PROVEN = "proven"  # a proof of existence (a timestamp's genTime)
    REQUESTED = "requested"  # the caller asked about this time (certificate status then)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(_Model):
    name: str = Field(description="stable check name, e.g. 'signature', 'revocation'")
    status: CheckStatus
    sub_indication: SubIndication | None = None
    message: str = Field(description="what was found, or why the check was not performed")

    @model_validator(mode="after")
    def _sub_indication_matches_status(self) -> Self:
        concluded_badly = self.status in (CheckStatus.FAILED, CheckStatus.INDETERMINATE)
        if concluded_badly != (self.sub_indication is not None):
            raise ValueError("failed and indeterminate checks carry a sub-indication, others none")
        return self


class CertificateInfo(_Model):
    subject: str
    issuer: str
    serial: str = Field(description="serial number, lower-case hex")
    not_before: AwareDatetime
    not_after: AwareDatetime
    sha256_fingerprint: str
    trust_anchor: bool = False


class RevocationSource(StrEnum):
    CRL = "crl"
    OCSP = "ocsp"


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class RevocationEvidence(_Model):
    source: RevocationSource
    certificate_subject: str
    certificate_serial: str
    issuer: str = Field(description="CRL issuer or OCSP responder")
    this_update: AwareDatetime
    next_update: AwareDatetime | None = None
    produced_at: AwareDatetime | None = None
    status: RevocationStatus
    revocation_time: AwareDatetime | None = None
    revocation_reason: str | None = None


class TimestampInfo(_Model):
    gen_time: AwareDatetime
    accuracy_microseconds: int | None = Field(
        None, description="the token's declared accuracy; it proves gen_time + accuracy"
    )
    tsa: CertificateInfo | None = None
    serial: str
    policy: str | None = None
    message_imprint_algorithm: str
    indication: Indication
    sub_indication: SubIndication | None = None


class Finding(_Model):
    """A warning or a diagnostic hint. ``code`` is stable; the message is for people."""

    code: str
    message: str
    details: dict[str, str] = Field(default_factory=dict)


class Verdict(_Model):
    indication: Indication
    sub_indication: SubIndication | None


def combine(checks: Iterable[Check]) -> Verdict:
    """The main indication and sub-indication of a list of checks (module docstring)."""
    checks = list(checks)
    for status, indication in (
        (CheckStatus.FAILED, Indication.TOTAL_FAILED),
        (CheckStatus.INDETERMINATE, Indication.INDETERMINATE),
    ):
        deciding = [c.sub_indication for c in checks if c.status is status]
        if deciding:
            # min() keeps the first of equal ranks: the check listed first wins ties.
            sub = min((s for s in deciding if s is not None), key=_RANK.__getitem__)
            return Verdict(indication=indication, sub_indication=sub)
    if any(c.status is CheckStatus.PASSED for c in checks):
        return Verdict(indication=Indication.TOTAL_PASSED, sub_indication=None)
    return Verdict(indication=Indication.INDETERMINATE, sub_indication=SubIndication.GENERIC)


class ValidationReport(_Model):
    schema_version: Literal["1"] = SCHEMA_VERSION
    validated_object: ValidatedObject
    indication: Indication
    sub_indication: SubIndication | None
    validation_time: AwareDatetime
    time_source: TimeSource
    signer: CertificateInfo | None = None
    claimed_signing_time: AwareDatetime | None = None
    proven_signing_time: AwareDatetime | None = None
    chain: tuple[CertificateInfo, ...] = Field(
        default=(), description="the certificate under validation first, the trust anchor last"
    )
    revocation: tuple[RevocationEvidence, ...] = ()
    timestamps: tuple[TimestampInfo, ...] = ()
    checks: tuple[Check, ...]
    warnings: tuple[Finding, ...] = ()
    hints: tuple[Finding, ...] = Field(
        default=(), description="diagnostics on a failure; never a reason to pass"
    )
    signers: tuple[ValidationReport, ...] = Field(
        default=(),
        description="CMS: one report per SignerInfo, in their order. The report's own "
        "indication is the worst of theirs (never better), and its other fields are those "
        "of the deciding signer (the first of the worst)",
    )

    @classmethod
    def build(
        cls,
        *,
        validated_object: ValidatedObject,
        checks: Iterable[Check],
        validation_time: datetime,
        time_source: TimeSource,
        **fields: object,
    ) -> ValidationReport:
        """A report whose indication is computed from ``checks``; other fields by name."""
        checks = tuple(checks)
        verdict = combine(checks)
        return cls.model_validate(
            {
                "validated_object": validated_object,
                "indication": verdict.indication,
                "sub_indication": verdict.sub_indication,
                "validation_time": validation_time,
                "time_source": time_source,
                "checks": checks,
                **fields,
            }
        )

    @model_validator(mode="after")
    def _indication_follows_checks(self) -> Self:
        verdict = combine(self.checks)
        if (self.indication, self.sub_indication) != (verdict.indication, verdict.sub_indication):
            raise ValueError("indication and sub-indication must follow from the checks")
        # Not better than any signer's; a report built on a CMS one (a PDF signature's)
        # may add checks of its own and so be worse.
        if self.signers and _verdict_rank(self) > _verdict_rank(worst(self.signers)):
            raise ValueError("the indication cannot be better than the worst of the signers'")
        return self

    @property
    def performed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is not CheckStatus.NOT_PERFORMED)

    @property
    def not_performed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is CheckStatus.NOT_PERFORMED)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


_INDICATION_RANK = {
    Indication.TOTAL_FAILED: 0,
    Indication.INDETERMINATE: 1,
    Indication.TOTAL_PASSED: 2,
}


def _verdict_rank(report: ValidationReport) -> tuple[int, int]:
    sub = report.sub_indication
    return _INDICATION_RANK[report.indication], len(_RANK) if sub is None else _RANK[sub]


def worst(reports: Iterable[ValidationReport]) -> ValidationReport:
    """The report whose verdict is worst by ``combine``'s precedence (failed, then
    indeterminate, then the sub-indication's rank); the first of equals."""
    return min(reports, key=_verdict_rank)
