"""Time-stamp tokens (RFC 3161 / GM/T 0033) in validation reports.

``trust`` knows no domain, so the token itself is read by a ``TimestampChecker`` that
the caller supplies (``timestamp.checker.TokenChecker`` in the service): it parses the
token and checks its CMS signature, its messageDigest, the ESS signingCertificate
binding, the TSA certificate's extended key usage and the message imprint. This module
adds what needs trust anchors: the TSA certificate's path, validated at the current time
(a token is worth what its TSA certificate is worth now; the TSA key's own proof of
existence, an archive timestamp, is out of scope).

``check_timestamp`` gives the checks of one token and, when every performed check
passed, the time it proves: genTime plus the declared accuracy, the latest moment the
token vouches for (conservative when the question is "before the revocation?").
``verify_timestamp`` is the report of a token on its own (``POST /v1/verify/timestamp``);
``verify_cms`` uses ``check_timestamp`` for signature timestamps (id-aa-timeStampToken),
whose imprint covers the SignerInfo's signature value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from asn1crypto import x509

from trust.clock import Clock, SystemClock
from trust.errors import BadRequest, MalformedASN1
from trust.sm2.backend import SM2Backend
from trust.validation.certs import CertificateInput, CrlInput, OcspInput, certificate_info
from trust.validation.ocsp_source import OcspSource
from trust.validation.path import PathRequest, PathResult, PathValidator, RevocationMode
from trust.validation.report import (
    Check,
    CheckName,
    CheckStatus,
    CmsCheck,
    SubIndication,
    TimeSource,
    TimestampInfo,
    ValidatedObject,
    ValidationReport,
    combine,
)


@dataclass(frozen=True)
class TokenCheck:
    """What a ``TimestampChecker`` found in a token, without trust decisions."""

    gen_time: datetime
    accuracy: timedelta | None
    serial_hex: str
    policy: str
    hash_algorithm: str  # the imprint's digest algorithm, our name or a dotted OID
    signer_certificate: x509.Certificate | None  # the TSA certificate, when found
    certificates: tuple[x509.Certificate, ...]  # carried in the token
    signature_ok: bool  # CMS signature and messageDigest over the TSTInfo
    ess_ok: bool  # ESS signingCertificate(V2) names the TSA certificate
    eku_ok: bool  # the TSA certificate has the critical EKU timeStamping only
    imprint_ok: bool | None  # None when nothing to compare with was given
    problems: tuple[str, ...]


class TimestampChecker(Protocol):
    def check(
        self, token: bytes, *, data: bytes | None = None, digest: bytes | None = None
    ) -> TokenCheck:
        """The token's own checks; ``data`` is hashed with the imprint's algorithm, or
        ``digest`` compared as is. Raises ``MalformedASN1`` when it is not a token."""
        ...


@dataclass(frozen=True)
class TimestampOutcome:
    token: bytes
    checks: tuple[Check, ...]
    info: TimestampInfo | None  # None when the token does not parse
    path: PathResult | None
    certificates: tuple[x509.Certificate, ...]  # the token's own

    @property
    def proven_time(self) -> datetime | None:
        """genTime + accuracy when the token holds up, else None."""
        if self.info is None or combine(self.checks).sub_indication is not None:
            return None
        accuracy = timedelta(microseconds=self.info.accuracy_microseconds or 0)
        return self.info.gen_time + accuracy

    @property
    def failure(self) -> str:
        """Why the token proves nothing (the first check that did not pass)."""
        bad = [
            c for c in self.checks if c.status in (CheckStatus.FAILED, CheckStatus.INDETERMINATE)
        ]
        return "; ".join(f"{c.name}: {c.message}" for c in bad[:2])


_TOKEN_CHECKS = (
    CheckName.FORMAT,
    CmsCheck.MESSAGE_IMPRINT,
    CheckName.SIGNATURE,
    CmsCheck.SIGNER_CERTIFICATE,
    CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE,
    CheckName.CERTIFICATE_CHAIN,
    CheckName.CERTIFICATE_VALIDITY,
    CheckName.REVOCATION,
    CheckName.KEY_USAGE,
)


def _check(name: str, status: CheckStatus, message: str, sub: SubIndication | None = None) -> Check:
    return Check(name=name, status=status, sub_indication=sub, message=message)


def check_timestamp(
    token: bytes,
    *,
    checker: TimestampChecker,
    validator: PathValidator,
    data: bytes | None = None,
    digest: bytes | None = None,
    intermediates: Sequence[CertificateInput] = (),
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    ocsp_source: OcspSource | None = None,
) -> TimestampOutcome:
    """The checks of one token over ``data`` (or ``digest``), its TSA path at the
    validator's current time."""
    try:
        found = checker.check(token, data=data, digest=digest)
    except MalformedASN1 as exc:
        reason = "not performed: the input is not a time-stamp token"
        checks = [
            _check(CheckName.FORMAT, CheckStatus.FAILED, exc.detail, SubIndication.FORMAT_FAILURE),
            *(_check(n, CheckStatus.NOT_PERFORMED, reason) for n in _TOKEN_CHECKS[1:]),
        ]
        return TimestampOutcome(token, tuple(checks), None, None, ())

    problems = "; ".join(found.problems)
    checks = [
        _check(
            CheckName.FORMAT,
            CheckStatus.PASSED,
            f"time-stamp token: TSTInfo serial {found.serial_hex}, policy {found.policy}",
        ),
        _imprint_check(found),
        _check(CheckName.SIGNATURE, CheckStatus.PASSED, "the TSA signature verifies over TSTInfo")
        if found.signature_ok
        else _check(
            CheckName.SIGNATURE,
            CheckStatus.FAILED,
            problems or "the TSA signature does not verify",
            SubIndication.SIG_CRYPTO_FAILURE,
        ),
    ]
    path: PathResult | None = None
    cert = found.signer_certificate
    if cert is None:
        checks.append(
            _check(
                CmsCheck.SIGNER_CERTIFICATE,
                CheckStatus.INDETERMINATE,
                "the TSA certificate is neither in the token nor supplied",
                SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            )
        )
        reason = "no TSA certificate to validate"
        checks += [_check(n, CheckStatus.NOT_PERFORMED, reason) for n in _TOKEN_CHECKS[4:]]
    else:
        subject = certificate_info(cert).subject
        checks.append(
            _check(CmsCheck.SIGNER_CERTIFICATE, CheckStatus.PASSED, f"TSA certificate: {subject}")
        )
        checks.append(
            _check(
                CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE,
                CheckStatus.PASSED,
                "ESS signingCertificate(V2) names the TSA certificate",
            )
            if found.ess_ok
            else _check(
                CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE,
                CheckStatus.INDETERMINATE,
                "no ESS signingCertificate(V2) naming the TSA certificate (RFC 3161 §2.4.2)",
                SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            )
        )
        path = validator.validate(
            PathRequest(
                certificate=cert,
                intermediates=[*found.certificates, *intermediates],
                crls=crls,
                ocsps=ocsps,
                revocation_mode=revocation_mode,
                for_signature=True,
                ocsp_source=ocsp_source,
            )
        )
        checks += path.checks()
        checks.append(
            _check(CheckName.KEY_USAGE, CheckStatus.PASSED, "extended key usage timeStamping")
            if found.eku_ok
            else _check(
                CheckName.KEY_USAGE,
                CheckStatus.INDETERMINATE,
                "the TSA certificate lacks a critical extended key usage of timeStamping only "
                "(RFC 3161 §2.3)",
                SubIndication.CHAIN_CONSTRAINTS_FAILURE,
            )
        )
    verdict = combine(checks)
    info = TimestampInfo(
        gen_time=found.gen_time,
        accuracy_microseconds=(
            found.accuracy // timedelta(microseconds=1) if found.accuracy is not None else None
        ),
        tsa=certificate_info(cert) if cert is not None else None,
        serial=found.serial_hex,
        policy=found.policy,
        message_imprint_algorithm=found.hash_algorithm,
        indication=verdict.indication,
        sub_indication=verdict.sub_indication,
    )
    return TimestampOutcome(token, tuple(checks), info, path, found.certificates)


def _imprint_check(found: TokenCheck) -> Check:
    name = CmsCheck.MESSAGE_IMPRINT
    if found.imprint_ok is None:
        return _check(name, CheckStatus.NOT_PERFORMED, "no data or digest to compare with")
    if found.imprint_ok:
        return _check(
            name, CheckStatus.PASSED, f"the {found.hash_algorithm} imprint matches the data"
        )
    return _check(
        name,
        CheckStatus.FAILED,
        f"the {found.hash_algorithm} imprint does not match the data",
        SubIndication.HASH_FAILURE,
    )


def verify_timestamp(
    token: bytes,
    *,
    checker: TimestampChecker,
    data: bytes | None = None,
    digest: bytes | None = None,
    anchors: Sequence[CertificateInput] = (),
    intermediates: Sequence[CertificateInput] = (),
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
    ocsp_source: OcspSource | None = None,
) -> ValidationReport:
    """A token on its own, over ``data`` or ``digest`` (at most one; neither leaves the
    imprint unchecked)."""
    if data is not None and digest is not None:
        raise BadRequest("give at most one of data and digest")
    clock = clock or SystemClock()
    outcome = check_timestamp(
        token,
        checker=checker,
        validator=PathValidator(anchors, clock=clock, sm2_backend=sm2_backend),
        data=data,
        digest=digest,
        intermediates=intermediates,
        crls=crls,
        ocsps=ocsps,
        revocation_mode=revocation_mode,
        ocsp_source=ocsp_source,
    )
    path = outcome.path
    return ValidationReport.build(
        validated_object=ValidatedObject.TIMESTAMP,
        checks=outcome.checks,
        validation_time=path.validation_time if path is not None else clock.now(),
        time_source=TimeSource.CURRENT,
        signer=outcome.info.tsa if outcome.info is not None else None,
        proven_signing_time=outcome.proven_time,
        chain=path.chain if path is not None else (),
        revocation=path.revocation if path is not None else (),
        timestamps=(outcome.info,) if outcome.info is not None else (),
        warnings=path.warnings if path is not None else (),
    )
