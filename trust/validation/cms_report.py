"""GM/T 0029 VerifySignedMessage: a CMS SignedData (RFC 5652, GM/T 0010) as a validation
report.

``verify_cms`` parses the SignedData (``trust.cms.verify``), then reports on each
SignerInfo: structure, messageDigest, signature (with SM2 diagnostics on failure), the
signer certificate, the ESS signingCertificate(V2) binding, its signature timestamps and
the signer's certificate path at its validation time. The report's ``signers`` holds one
report per SignerInfo, in order; the report itself is that of the deciding signer (the
worst verdict by ``combine``'s precedence, the first of equals), so its indication is
the worst, and with several signers a ``cms.signers`` warning names which one decided.

Malformed input is a report, not an exception: TOTAL_FAILED/FORMAT_FAILURE with every
other check not performed, so a caller (the HTTP API) can answer every CMS it is given
with a report. Parsing is bounded (``trust.cms.asn1``), so garbage fails fast.

Times: ``at`` is a proven time the caller vouches for; without it, a signature timestamp
(id-aa-timeStampToken, imprint over the signature value) that holds up
(``trust.validation.timestamps``, read through the ``timestamp_checker`` the caller
passes) proves the signature existed at its genTime (+ accuracy), and the signer's path
is validated at that time: a certificate revoked or expired later does not matter, one
revoked before stays REVOKED_NO_POE (the token proves existence at genTime, not that
the signature was made after the revocation; EN 319 102-1 §5.6.2.4). With no usable
timestamp the path is validated now. A timestamp that does not hold up is
INDETERMINATE/NO_POE on the ``timestamp`` check: the signature claims a proof of
existence that fails, which a verifier must see (TRY_LATER when only revocation data
for the TSA's path is missing). Without a checker, a timestamp is
listed as not performed. The signingTime attribute is the signer's own claim: reported,
never used to pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, x509

from trust.clock import Clock, SystemClock
from trust.cms.algorithms import DIGEST_OIDS
from trust.cms.verify import DIGEST_MISMATCH, SignedDataResult, SignerResult, verify_signed_data
from trust.errors import MalformedASN1, TrustError
from trust.keys import SM2PublicKey, load_public_key
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend
from trust.validation.certs import (
    CertificateInput,
    CrlInput,
    OcspInput,
    certificate_info,
    load_certificate,
)
from trust.validation.diagnostics import diagnose_sm2_signature
from trust.validation.ocsp_source import OcspSource
from trust.validation.path import PathRequest, PathValidator, RevocationMode
from trust.validation.report import (
    CertificateInfo,
    Check,
    CheckName,
    CheckStatus,
    CmsCheck,
    Finding,
    RevocationEvidence,
    SubIndication,
    TimeSource,
    ValidatedObject,
    ValidationReport,
    worst,
)
from trust.validation.timestamps import TimestampChecker, TimestampOutcome, check_timestamp
from trust.validation.verify import (
    _SIGNING_USAGES,
    _chain_hints,
    _key_usage_check,
    _other_sm2_keys,
)

_AFTER_FORMAT = (
    CmsCheck.MESSAGE_DIGEST,
    CheckName.SIGNATURE,
    CmsCheck.SIGNER_CERTIFICATE,
    CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE,
    CheckName.CERTIFICATE_CHAIN,
    CheckName.CERTIFICATE_VALIDITY,
    CheckName.REVOCATION,
    CheckName.KEY_USAGE,
    CmsCheck.TIMESTAMP,
)


# Tokens looked at per signer: one is normal, a second may come from a renewal.
MAX_TIMESTAMPS = 4


@dataclass(frozen=True)
class CmsVerification:
    """A report and the material it rests on (for an evidence bundle)."""

    report: ValidationReport
    certificates: tuple[x509.Certificate, ...]  # the CMS's, the tokens', supplied, anchors
    timestamps: tuple[bytes, ...]  # signature timestamp tokens found, DER
    ocsps: tuple[bytes, ...] = ()  # OCSP responses the ocsp_source gave, DER


def verify_cms(
    cms_der: bytes,
    data: bytes | None = None,
    *,
    anchors: Sequence[CertificateInput] = (),
    intermediates: Sequence[CertificateInput] = (),
    at: datetime | None = None,
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
    timestamp_checker: TimestampChecker | None = None,
    ocsp_source: OcspSource | None = None,
) -> ValidationReport:
    """VerifySignedMessage: ``data`` is the detached content (or, for an attached CMS,
    content that must equal the encapsulated one). ``intermediates`` add to the
    certificates the CMS carries."""
    return verify_cms_detailed(
        cms_der,
        data,
        anchors=anchors,
        intermediates=intermediates,
        at=at,
        crls=crls,
        ocsps=ocsps,
        revocation_mode=revocation_mode,
        clock=clock,
        sm2_backend=sm2_backend,
        timestamp_checker=timestamp_checker,
        ocsp_source=ocsp_source,
    ).report


def verify_cms_detailed(
    cms_der: bytes,
    data: bytes | None = None,
    *,
    anchors: Sequence[CertificateInput] = (),
    intermediates: Sequence[CertificateInput] = (),
    at: datetime | None = None,
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
    timestamp_checker: TimestampChecker | None = None,
    ocsp_source: OcspSource | None = None,
) -> CmsVerification:
    """``verify_cms`` with the certificates and tokens it used."""
    clock = clock or SystemClock()
    extra = [load_certificate(c) for c in intermediates]
    trusted = [load_certificate(c) for c in anchors]
    try:
        parsed = verify_signed_data(cms_der, content=data, extra_certificates=extra)
    except MalformedASN1 as exc:
        return _format_failure(exc.detail, at, clock)
    if not parsed.signers:  # parses, but nobody signed it
        return _format_failure("the SignedData has no SignerInfo", at, clock)

    context = _Context(
        parsed=parsed,
        pool=[*parsed.certificates, *extra],
        trusted=trusted,
        validator=PathValidator(trusted, clock=clock, sm2_backend=sm2_backend),
        at=at,
        crls=crls,
        ocsps=ocsps,
        revocation_mode=revocation_mode,
        clock=clock,
        sm2_backend=sm2_backend,
        timestamp_checker=timestamp_checker,
        ocsp_source=ocsp_source,
    )
    done = [_signer_report(context, signer) for signer in parsed.signers]
    reports = tuple(report for report, _ in done)
    deciding = worst(reports)
    summary = deciding
    if len(reports) > 1:
        position = reports.index(deciding) + 1
        note = Finding(
            code="cms.signers",
            message=f"{len(reports)} signers, each validated (see signers); this verdict is "
            f"the worst of theirs, that of signer {position}",
        )
        summary = deciding.model_copy(update={"warnings": (note, *deciding.warnings)})
    report = summary.model_copy(update={"signers": reports})
    tokens = tuple(token for _, stamps in done for token in stamps.tokens)
    fetched = tuple(dict.fromkeys(o for _, stamps in done for o in stamps.ocsps))
    seen = [
        *context.pool,
        *trusted,
        *(c for _, s in done for o in s.outcomes for c in o.certificates),
    ]
    return CmsVerification(report, tuple(seen), tokens, fetched)


@dataclass(frozen=True)
class _Context:
    """What every SignerInfo of one SignedData is validated with."""

    parsed: SignedDataResult
    pool: list[x509.Certificate]  # the CMS's certificates and the supplied ones
    trusted: list[x509.Certificate]
    validator: PathValidator
    at: datetime | None
    crls: Sequence[CrlInput]
    ocsps: Sequence[OcspInput]
    revocation_mode: RevocationMode
    clock: Clock
    sm2_backend: SM2Backend | None
    timestamp_checker: TimestampChecker | None
    ocsp_source: OcspSource | None


@dataclass(frozen=True)
class _Stamps:
    tokens: tuple[bytes, ...]  # the signature timestamp tokens looked at, DER
    outcomes: tuple[TimestampOutcome, ...]  # their checks (none without a checker)
    ocsps: tuple[bytes, ...]  # from ocsp_source, for the signer's and the TSAs' paths


def _signer_report(ctx: _Context, signer: SignerResult) -> tuple[ValidationReport, _Stamps]:
    """One SignerInfo's report: its own checks, timestamps, proven time and path."""
    cert, parsed = signer.certificate, ctx.parsed
    tokens = _signature_timestamps(signer.unsigned_attributes)
    stamps: list[TimestampOutcome] = []
    if ctx.timestamp_checker is not None:
        stamps = [
            check_timestamp(
                token,
                checker=ctx.timestamp_checker,
                validator=ctx.validator,
                data=signer.signature,
                intermediates=ctx.pool,
                crls=ctx.crls,
                ocsps=ctx.ocsps,
                revocation_mode=ctx.revocation_mode,
                ocsp_source=ctx.ocsp_source,
            )
            for token in tokens[:MAX_TIMESTAMPS]
        ]
    at = ctx.at
    proven = [t for s in stamps if (t := s.proven_time) is not None]
    if at is None and proven:
        at = min(proven)
    validation_time = at if at is not None else ctx.clock.now()
    time_source = TimeSource.PROVEN if at is not None else TimeSource.CURRENT

    signature_check, hints = _signature_check(signer, parsed.content, [*ctx.pool, *ctx.trusted])
    checks = [
        _format_check(parsed.content_info_type, parsed.content_type, parsed.detached, signer),
        _digest_check(signer, parsed.content, parsed.problems),
        signature_check,
        _identity_check(signer),
        _ess_check(signer),
    ]
    warnings: list[Finding] = []
    chain: tuple[CertificateInfo, ...] = ()
    revocation: tuple[RevocationEvidence, ...] = ()
    fetched: tuple[bytes, ...] = ()
    if cert is None:
        checks += [_skipped(name, "no signer certificate to validate") for name in _PATH_CHECKS]
    else:
        path = ctx.validator.validate(
            PathRequest(
                certificate=cert,
                intermediates=ctx.pool,
                at=at,
                crls=ctx.crls,
                ocsps=ctx.ocsps,
                revocation_mode=ctx.revocation_mode,
                for_signature=True,
                ocsp_source=ctx.ocsp_source,
            )
        )
        fetched += path.fetched_ocsps
        checks += path.checks()
        checks.append(_key_usage_check(cert, _SIGNING_USAGES, any_of=True))
        hints += _chain_hints(path, [*ctx.pool, *ctx.trusted], ctx.sm2_backend)
        warnings += path.warnings
        warnings += _validity_warnings(cert, validation_time, signer.signing_time)
        chain, revocation = path.chain, path.revocation
    checks.append(_timestamp_check(len(tokens), stamps, ctx.timestamp_checker is not None))
    for stamp in stamps:
        if stamp.path is not None:
            revocation += stamp.path.revocation
            fetched += stamp.path.fetched_ocsps
    report = ValidationReport.build(
        validated_object=ValidatedObject.CMS_SIGNATURE,
        checks=checks,
        validation_time=validation_time,
        time_source=time_source,
        signer=certificate_info(cert) if cert is not None else None,
        claimed_signing_time=signer.signing_time,
        proven_signing_time=at,
        chain=chain,
        revocation=revocation,
        timestamps=tuple(s.info for s in stamps if s.info is not None),
        warnings=tuple(warnings),
        hints=tuple(hints),
    )
    return report, _Stamps(tuple(tokens[:MAX_TIMESTAMPS]), tuple(stamps), fetched)


_PATH_CHECKS = (
    CheckName.CERTIFICATE_CHAIN,
    CheckName.CERTIFICATE_VALIDITY,
    CheckName.REVOCATION,
    CheckName.KEY_USAGE,
)


def _check(name: str, status: CheckStatus, message: str, sub: SubIndication | None = None) -> Check:
    return Check(name=name, status=status, sub_indication=sub, message=message)


def _skipped(name: str, reason: str) -> Check:
    return _check(name, CheckStatus.NOT_PERFORMED, reason)


def _format_failure(detail: str, at: datetime | None, clock: Clock) -> CmsVerification:
    reason = "not performed: the input is not a well-formed CMS SignedData"
    report = ValidationReport.build(
        validated_object=ValidatedObject.CMS_SIGNATURE,
        checks=[
            _check(CheckName.FORMAT, CheckStatus.FAILED, detail, SubIndication.FORMAT_FAILURE),
            *(_skipped(name, reason) for name in _AFTER_FORMAT),
        ],
        validation_time=at if at is not None else clock.now(),
        time_source=TimeSource.PROVEN if at is not None else TimeSource.CURRENT,
    )
    return CmsVerification(report, (), ())


def _format_check(info_type: str, content_type: str, detached: bool, signer: SignerResult) -> Check:
    # trust.cms.verify words every structural problem of the signed attributes this way.
    bad = [p for p in signer.problems if p.startswith("signed attribute ")]
    if bad:
        return _check(
            CheckName.FORMAT, CheckStatus.FAILED, "; ".join(bad), SubIndication.FORMAT_FAILURE
        )
    form = "detached" if detached else "attached"
    return _check(
        CheckName.FORMAT,
        CheckStatus.PASSED,
        f"CMS SignedData ({info_type}), {form} content of type {content_type}",
    )


def _digest_check(
    signer: SignerResult, content: bytes | None, content_problems: Sequence[str]
) -> Check:
    name = CmsCheck.MESSAGE_DIGEST
    if content_problems:
        return _check(
            name, CheckStatus.FAILED, "; ".join(content_problems), SubIndication.HASH_FAILURE
        )
    if signer.signed_attributes is None:
        return _skipped(name, "no signed attributes: the signature covers the content itself")
    if content is None:
        return _check(
            name,
            CheckStatus.INDETERMINATE,
            "detached content not supplied",
            SubIndication.SIGNED_DATA_NOT_FOUND,
        )
    if signer.digest_algorithm not in DIGEST_OIDS:
        return _check(
            name,
            CheckStatus.INDETERMINATE,
            f"digest algorithm {signer.digest_algorithm} is not supported",
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        )
    claimed = [
        attr["values"][0].native
        for attr in signer.signed_attributes
        if attr["type"].native == "message_digest" and len(attr["values"]) == 1
    ]
    if not claimed:
        return _check(
            name,
            CheckStatus.FAILED,
            "no single-valued messageDigest signed attribute",
            SubIndication.FORMAT_FAILURE,
        )
    if DIGEST_MISMATCH in signer.problems:  # trust.cms.verify compared them already
        return _check(
            name,
            CheckStatus.FAILED,
            f"the {signer.digest_algorithm} digest of the content differs from messageDigest",
            SubIndication.HASH_FAILURE,
        )
    return _check(
        name, CheckStatus.PASSED, f"messageDigest matches the {signer.digest_algorithm} digest"
    )


def _signature_check(
    signer: SignerResult, content: bytes | None, others: Sequence[x509.Certificate]
) -> tuple[Check, list[Finding]]:
    name = CheckName.SIGNATURE
    covered = "the signed attributes" if signer.signed_attributes is not None else "the content"
    if signer.signature_ok:
        return _check(name, CheckStatus.PASSED, f"signature verifies over {covered}"), []
    if signer.certificate is None:
        return _skipped(name, "no signer certificate, so no key to verify with"), []
    message = (
        # The signature covers the attributes as a DER SET OF, not as the [0] field.
        b"\x31" + signer.signed_attributes.dump()[1:]
        if signer.signed_attributes is not None
        else content
    )
    if message is None:
        return _skipped(name, "detached content not supplied"), []
    problems = "; ".join(p for p in signer.problems if not p.startswith("signed attribute "))
    if "not supported" in problems:
        sub = SubIndication.CRYPTO_CONSTRAINTS_FAILURE
        return _check(name, CheckStatus.INDETERMINATE, problems, sub), []
    failed = _check(name, CheckStatus.FAILED, problems, SubIndication.SIG_CRYPTO_FAILURE)
    try:
        key = load_public_key(signer.certificate.public_key.dump())
    except TrustError:
        return failed, []
    if not isinstance(key, SM2PublicKey):
        return failed, []
    hints = diagnose_sm2_signature(
        key,
        signer.signature,
        message=message,
        signer_id=DEFAULT_SIGNER_ID,
        other_keys=_other_sm2_keys(others, key.backend, exclude=key),
    )
    return failed, list(hints)


def _identity_check(signer: SignerResult) -> Check:
    name = CmsCheck.SIGNER_CERTIFICATE
    if signer.certificate is None:
        return _check(
            name,
            CheckStatus.INDETERMINATE,
            "the certificate named by the SignerIdentifier is neither in the CMS nor supplied",
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
        )
    subject = certificate_info(signer.certificate).subject
    return _check(name, CheckStatus.PASSED, f"signer certificate found: {subject}")


def _ess_check(signer: SignerResult) -> Check:
    name = CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE
    if signer.ess_certificate_ok is None:
        return _skipped(name, "no ESS signingCertificate(V2) attribute binds the certificate")
    if signer.certificate is None:
        return _skipped(name, "no signer certificate to compare with")
    if signer.ess_certificate_ok:
        return _check(
            name, CheckStatus.PASSED, "ESS signingCertificate(V2) names the signer certificate"
        )
    return _check(
        name,
        CheckStatus.INDETERMINATE,
        "ESS signingCertificate(V2) names another certificate than the signer's",
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )


def _signature_timestamps(unsigned: cms.CMSAttributes | None) -> list[bytes]:
    if unsigned is None:
        return []
    return [
        value.dump()
        for attr in unsigned
        if attr["type"].native == "signature_time_stamp_token"
        for value in attr["values"]
    ]


def _timestamp_check(found: int, stamps: Sequence[TimestampOutcome], can_check: bool) -> Check:
    name = CmsCheck.TIMESTAMP
    if not found:
        return _skipped(name, "no signature timestamp")
    if not can_check:
        return _skipped(
            name,
            "a signature timestamp is present but no timestamp verifier was given: the "
            "signature was validated without its proof of existence",
        )
    good = sorted((s.proven_time, s.info) for s in stamps if s.proven_time is not None and s.info)
    if good:
        when, info = good[0]
        tsa = info.tsa.subject if info.tsa is not None else "?"
        return _check(
            name,
            CheckStatus.PASSED,
            f"signature timestamp by {tsa} verified (TSA signature, imprint of the signature "
            f"value, TSA certificate path); the signature existed at {when.isoformat()}",
        )
    # Missing revocation data for the TSA may arrive later: say so rather than NO_POE.
    later = all(
        s.info is not None and s.info.sub_indication is SubIndication.TRY_LATER for s in stamps
    )
    return _check(
        name,
        CheckStatus.INDETERMINATE,
        f"the signature timestamp does not hold up ({stamps[0].failure}): no proof of existence",
        SubIndication.TRY_LATER if later else SubIndication.NO_POE,
    )


def _validity_warnings(
    cert: x509.Certificate, when: datetime, claimed: datetime | None
) -> list[Finding]:
    """Expiry made visible even when the path check stopped before validity (no chain)."""
    validity = cert["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    span = f"{start.isoformat()} to {end.isoformat()}"
    found = []
    if not start <= when <= end:
        found.append(
            Finding(
                code="signer_certificate.outside_validity",
                message=f"the signer certificate is valid {span}, not at {when.isoformat()}",
            )
        )
    if claimed is not None and not start <= claimed <= end:
        found.append(
            Finding(
                code="signing_time.outside_validity",
                message=f"the claimed signing time {claimed.isoformat()} is outside the "
                f"signer certificate's validity {span}",
            )
        )
    return found
