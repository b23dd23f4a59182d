"""GM/T 0029 VerifySignedData and ValidateCert as validation reports.

``verify_raw_signature`` checks a raw signature (SM2 with Z and a signer ID, ECDSA, RSA)
under a certificate, to the requested ``verify_level``: 0 the signature only, 1 also the
certificate chain and validity, 2 also revocation. ``validate_certificate`` checks one
certificate's chain, validity and revocation at a time. What a level leaves out is listed
as not performed, so a level-0 TOTAL_PASSED says exactly "the signature verifies under
this certificate's key" and nothing about the certificate.

Signature encodings (SM2): ``der`` (GM/T 0009 SEQUENCE {r, s}, the default) or ``raw``
(64-byte r||s from SDF/SKF devices). The caller declares which; a signature in the other
encoding is not silently accepted (the verdict would then depend on a guess and a
signature would have two accepted forms) but fails with FORMAT_FAILURE, and the
diagnostics say that it verifies once converted.

Times: ``at`` for a signature is a proven time (a timestamp's genTime); without it the
signature is validated at the current time. ``claimed_time`` (e.g. a signing-time the
signer wrote) is reported but never used to pass. See ``trust.validation.path`` for how
expiry and revocation map to ETSI sub-indications at each kind of time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import IntEnum

from asn1crypto import x509

from trust.clock import Clock, SystemClock
from trust.errors import (
    BadRequest,
    InvalidSignature,
    InvalidSignatureEncoding,
    TrustError,
    UnsupportedAlgorithm,
)
from trust.keys import PublicKey, SM2PublicKey, load_public_key
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend
from trust.sm2.encoding import raw_to_der
from trust.validation.certs import (
    CertificateInput,
    CrlInput,
    OcspInput,
    certificate_info,
    load_certificate,
    name_text,
)
from trust.validation.diagnostics import SignatureEncoding, diagnose_sm2_signature
from trust.validation.ocsp_source import OcspSource
from trust.validation.path import PathRequest, PathResult, PathValidator, RevocationMode
from trust.validation.report import (
    CertificateInfo,
    Check,
    CheckName,
    CheckStatus,
    Finding,
    RevocationEvidence,
    SubIndication,
    TimeSource,
    ValidatedObject,
    ValidationReport,
)
from trust.validation.sm2_validator import is_sm2_signature_algorithm


class VerifyLevel(IntEnum):
    """GM/T 0029 verifyLevel."""

    SIGNATURE = 0
    CHAIN = 1
    REVOCATION = 2


# Key usages that allow verifying a signature over data (not certificates or CRLs).
_SIGNING_USAGES = frozenset({"digital_signature", "non_repudiation"})


def verify_raw_signature(
    certificate: CertificateInput,
    signature: bytes,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    signer_id: bytes | None = None,
    signature_encoding: SignatureEncoding = SignatureEncoding.DER,
    verify_level: VerifyLevel | int = VerifyLevel.SIGNATURE,
    anchors: Sequence[CertificateInput] = (),
    intermediates: Sequence[CertificateInput] = (),
    at: datetime | None = None,
    claimed_time: datetime | None = None,
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.REQUIRE,
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
    ocsp_source: OcspSource | None = None,
) -> ValidationReport:
    """VerifySignedData: ``data`` is the signed message, or ``digest`` the precomputed
    value that was signed (SM2: e = SM3(Z || M); ECDSA/RSA: the message hash).
    ``signer_id`` is SM2's distinguishing ID, default ``1234567812345678``.
    ``revocation_mode`` applies at level 2 (``require``: every certificate needs a CRL or
    OCSP response among ``crls``/``ocsps``)."""
    if (data is None) == (digest is None):
        raise BadRequest("give exactly one of data and digest")
    level = _level(verify_level)
    clock = clock or SystemClock()
    cert = load_certificate(certificate)
    key = load_public_key(cert.public_key.dump(), sm2_backend=sm2_backend)

    signature_check, hints = _signature_check(
        key, signature, data, digest, signer_id, signature_encoding, [*intermediates, *anchors]
    )
    checks = [signature_check]
    warnings: list[Finding] = []
    validation_time = at if at is not None else clock.now()
    chain: tuple[CertificateInfo, ...] = (certificate_info(cert),)
    revocation: tuple[RevocationEvidence, ...] = ()
    if level is VerifyLevel.SIGNATURE:
        reason = "verify_level 0: signature only (GM/T 0029)"
        checks += [_not_performed(name, reason) for name in _CERTIFICATE_CHECKS]
    else:
        path = PathValidator(anchors, clock=clock, sm2_backend=sm2_backend).validate(
            PathRequest(
                certificate=cert,
                intermediates=intermediates,
                at=at,
                crls=crls,
                ocsps=ocsps,
                revocation_mode=(
                    RevocationMode.NONE if level is VerifyLevel.CHAIN else revocation_mode
                ),
                for_signature=True,
                ocsp_source=ocsp_source if level is VerifyLevel.REVOCATION else None,
            )
        )
        checks += _path_checks(path, level)
        checks.append(_key_usage_check(cert, _SIGNING_USAGES, any_of=True))
        hints += _chain_hints(path, [*intermediates, *anchors], sm2_backend)
        warnings += path.warnings
        validation_time, chain, revocation = path.validation_time, path.chain, path.revocation
    return ValidationReport.build(
        validated_object=ValidatedObject.RAW_SIGNATURE,
        checks=checks,
        validation_time=validation_time,
        time_source=TimeSource.PROVEN if at is not None else TimeSource.CURRENT,
        signer=certificate_info(cert),
        claimed_signing_time=claimed_time,
        proven_signing_time=at,
        chain=chain,
        revocation=revocation,
        warnings=tuple(warnings),
        hints=tuple(hints),
    )


def validate_certificate(
    certificate: CertificateInput,
    chain: Sequence[CertificateInput] = (),
    *,
    anchors: Sequence[CertificateInput] = (),
    at: datetime | None = None,
    crls: Sequence[CrlInput] = (),
    ocsps: Sequence[OcspInput] = (),
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL,
    key_usage: Iterable[str] = (),
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
    ocsp_source: OcspSource | None = None,
) -> ValidationReport:
    """ValidateCert: the certificate's status at ``at`` (default now). ``chain`` holds the
    other certificates it may chain through; ``key_usage`` names asn1crypto key usages
    ("digital_signature", "key_encipherment", ...) the certificate must all allow."""
    cert = load_certificate(certificate)
    path = PathValidator(anchors, clock=clock, sm2_backend=sm2_backend).validate(
        PathRequest(
            certificate=cert,
            intermediates=chain,
            at=at,
            crls=crls,
            ocsps=ocsps,
            revocation_mode=revocation_mode,
            for_signature=False,
            ocsp_source=ocsp_source,
        )
    )
    wanted = frozenset(key_usage)
    usage = (
        _key_usage_check(cert, wanted, any_of=False)
        if wanted
        else _not_performed(CheckName.KEY_USAGE, "no key usage was asked for")
    )
    return ValidationReport.build(
        validated_object=ValidatedObject.CERTIFICATE,
        checks=[*_path_checks(path, VerifyLevel.REVOCATION), usage],
        validation_time=path.validation_time,
        time_source=TimeSource.REQUESTED if at is not None else TimeSource.CURRENT,
        chain=path.chain,
        revocation=path.revocation,
        warnings=path.warnings,
        hints=tuple(_chain_hints(path, [*chain, *anchors], sm2_backend)),
    )


_CERTIFICATE_CHECKS = (
    CheckName.CERTIFICATE_CHAIN,
    CheckName.CERTIFICATE_VALIDITY,
    CheckName.REVOCATION,
    CheckName.KEY_USAGE,
)


def _level(value: VerifyLevel | int) -> VerifyLevel:
    try:
        return VerifyLevel(value)
    except ValueError:
        raise BadRequest(f"verify_level must be 0, 1 or 2, not {value}") from None


def _not_performed(name: CheckName, reason: str) -> Check:
    return Check(name=name, status=CheckStatus.NOT_PERFORMED, message=reason)


def _path_checks(path: PathResult, level: VerifyLevel) -> list[Check]:
    checks = list(path.checks())
    if level is VerifyLevel.CHAIN:
        reason = "verify_level 1: chain and validity only; level 2 adds CRL/OCSP (GM/T 0029)"
        checks = [
            _not_performed(CheckName.REVOCATION, reason) if c.name == CheckName.REVOCATION else c
            for c in checks
        ]
    return checks


def _signature_check(
    key: PublicKey,
    signature: bytes,
    data: bytes | None,
    digest: bytes | None,
    signer_id: bytes | None,
    encoding: SignatureEncoding,
    others: Sequence[CertificateInput],
) -> tuple[Check, list[Finding]]:
    is_sm2 = isinstance(key, SM2PublicKey)
    if not is_sm2 and encoding is not SignatureEncoding.DER:
        raise UnsupportedAlgorithm(f"{key.algorithm} signatures have no raw encoding here")
    what = "the data" if data is not None else "the given digest"
    try:
        der = raw_to_der(signature) if encoding is SignatureEncoding.RAW else signature
        if data is not None:
            key.verify(der, data, signer_id=signer_id)
        else:
            assert digest is not None
            key.verify_digest(der, digest)
    except InvalidSignatureEncoding as exc:
        sub, message = SubIndication.FORMAT_FAILURE, f"{exc.detail} ({encoding} expected)"
    except InvalidSignature:
        sub, message = (
            SubIndication.SIG_CRYPTO_FAILURE,
            f"the signature does not verify over {what}",
        )
    else:
        scheme = (
            f"SM2 with Z over signer ID {(signer_id or DEFAULT_SIGNER_ID).decode('latin-1')!r}"
            if is_sm2 and data is not None
            else str(key.algorithm)
        )
        passed = Check(
            name=CheckName.SIGNATURE,
            status=CheckStatus.PASSED,
            message=f"{scheme} signature verifies over {what}",
        )
        return passed, []
    failed = Check(
        name=CheckName.SIGNATURE, status=CheckStatus.FAILED, sub_indication=sub, message=message
    )
    if not isinstance(key, SM2PublicKey):
        return failed, []
    hints = diagnose_sm2_signature(
        key,
        signature,
        message=data,
        digest=digest,
        signer_id=signer_id if signer_id is not None else DEFAULT_SIGNER_ID,
        encoding=encoding,
        other_keys=_other_sm2_keys(others, key.backend, exclude=key),
    )
    return failed, list(hints)


def _other_sm2_keys(
    certs: Sequence[CertificateInput], backend: SM2Backend, exclude: PublicKey | None = None
) -> list[tuple[str, SM2PublicKey]]:
    """The SM2 keys of the supplied certificates, labelled by subject, for diagnostics."""
    found = []
    for item in certs:
        try:
            cert = load_certificate(item)
            key = load_public_key(cert.public_key.dump(), sm2_backend=backend)
        except TrustError:
            continue
        if isinstance(key, SM2PublicKey) and key != exclude:
            found.append((f"{name_text(cert.subject)} (serial {cert.serial_number:x})", key))
    return found


def _chain_hints(
    path: PathResult, supplied: Sequence[CertificateInput], backend: SM2Backend | None
) -> list[Finding]:
    """SM2 diagnostics for certificate signatures of the path that did not verify."""
    hints: list[Finding] = []
    for bad in path.signature_failures:
        cert = bad.certificate
        if bad.unsupported or not is_sm2_signature_algorithm(cert["signature_algorithm"]):
            continue
        try:
            issuer_key = load_public_key(bad.issuer_key.dump(), sm2_backend=backend)
        except TrustError:
            continue
        if not isinstance(issuer_key, SM2PublicKey):
            continue
        subject = name_text(cert.subject)
        for hint in diagnose_sm2_signature(
            issuer_key,
            cert["signature_value"].native,
            message=cert["tbs_certificate"].dump(),
            other_keys=_other_sm2_keys(supplied, issuer_key.backend, exclude=issuer_key),
        ):
            hints.append(
                hint.model_copy(update={"details": {**hint.details, "certificate": subject}})
            )
    return hints


def _key_usage_check(cert: x509.Certificate, usages: frozenset[str], *, any_of: bool) -> Check:
    present = cert.key_usage_value
    if present is None:
        return Check(
            name=CheckName.KEY_USAGE,
            status=CheckStatus.PASSED,
            message="no key usage extension: the key is not restricted",
        )
    allowed = set(present.native)
    ok = bool(allowed & usages) if any_of else usages <= allowed
    wanted = (" or " if any_of else " and ").join(sorted(usages))
    if ok:
        return Check(
            name=CheckName.KEY_USAGE,
            status=CheckStatus.PASSED,
            message=f"key usage allows {wanted}",
        )
    return Check(
        name=CheckName.KEY_USAGE,
        status=CheckStatus.INDETERMINATE,
        sub_indication=SubIndication.CHAIN_CONSTRAINTS_FAILURE,
        message=f"key usage {', '.join(sorted(allowed))} does not allow {wanted}",
    )
