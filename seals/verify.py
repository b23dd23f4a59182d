"""Verification of seals and signatures (standards.md §1.2, C38540 order).

Each function returns a report with one entry per check, in a fixed order, instead of
raising on the first failure: a verifier wants to see everything that is wrong.
Certificate chains, revocation, timestamps and registry status need trust anchors and a
seal registry: a ``TrustContext`` (``seals/validation.py``) performs them; without one
they are listed as ``not_checked`` so that a report never looks more complete than it is.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from asn1crypto import cms, x509
from cryptography.hazmat.primitives import hashes

from seals.detect import SealVersion
from seals.parse import CertListType, ParsedSeal, ParsedSealSignature, parse_seal, parse_signature
from trust import oids
from trust.errors import (
    InvalidLength,
    InvalidSignature,
    InvalidSignatureEncoding,
    MalformedASN1,
    TrustError,
    UnsupportedSealVersion,
    ValidationFailed,
)
from trust.keys import SM2PublicKey, load_public_key
from trust.sm2.backend import SM2Backend
from trust.sm3 import DIGEST_SIZE, sm3
from trust.validation import SubIndication as PathSubIndication


class CheckName(StrEnum):
    FORMAT = "format"
    SIGNER_SIGNATURE = "signer_signature"
    SIGNER_IN_SEAL = "signer_in_seal"
    SEAL_MAKER_SIGNATURE = "seal_maker_signature"
    SEAL_MAKER_CERTIFICATE = "seal_maker_certificate"
    SEAL_VALIDITY = "seal_validity"
    SIGNER_CERTIFICATE = "signer_certificate"
    DATA_HASH = "data_hash"
    SIGNATURE_TIMESTAMP = "signature_timestamp"
    SEAL_TIMESTAMP = "seal_timestamp"
    SEAL_STATUS = "seal_status"
    SEAL_MAKER_REVOCATION = "seal_maker_revocation"
    SIGNER_REVOCATION = "signer_revocation"


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"  # ran, but could not conclude (no proof of time, ...)
    NOT_CHECKED = "not_checked"
    NOT_APPLICABLE = "not_applicable"  # nothing to check (no timestamp present): neutral


class SubIndication(StrEnum):
    SEAL_MAKER_SIGNATURE_INVALID = "SEAL_MAKER_SIGNATURE_INVALID"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    SIGNER_NOT_IN_SEAL = "SIGNER_NOT_IN_SEAL"
    SEAL_EXPIRED = "SEAL_EXPIRED"
    SEAL_NOT_YET_VALID = "SEAL_NOT_YET_VALID"
    DATA_HASH_MISMATCH = "DATA_HASH_MISMATCH"
    UNSUPPORTED_SEAL_VERSION = "UNSUPPORTED_SEAL_VERSION"
    FORMAT_FAILURE = "FORMAT_FAILURE"
    TIMESTAMP_UNPARSEABLE = "TIMESTAMP_UNPARSEABLE"
    # Registry status (seals this service knows)
    SEAL_SUSPENDED_AT_SIGNING_TIME = "SEAL_SUSPENDED_AT_SIGNING_TIME"
    SEAL_REVOKED = "SEAL_REVOKED"
    SEAL_NOT_ACTIVE_AT_SIGNING_TIME = "SEAL_NOT_ACTIVE_AT_SIGNING_TIME"
    SEAL_SUSPENDED = "SEAL_SUSPENDED"
    SEAL_NOT_ACTIVE = "SEAL_NOT_ACTIVE"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"


class Indication(StrEnum):
    PASSED = "passed"  # every check ran and passed
    FAILED = "failed"  # at least one check failed
    INDETERMINATE = "indeterminate"  # nothing failed, but something was not checked


@dataclass(frozen=True)
class Check:
    name: CheckName
    status: CheckStatus
    # Certificate path checks carry the validation service's (ETSI) sub-indications.
    sub_indication: SubIndication | PathSubIndication | None
    message: str


@dataclass(frozen=True)
class VerificationResult:
    version: SealVersion | None  # None when the input did not parse
    checks: tuple[Check, ...]
    signing_time: datetime | None = None  # timeInfo, as claimed by the signer
    proven_time: datetime | None = None  # genTime of a verified signature timestamp

    @property
    def indication(self) -> Indication:
        statuses = {c.status for c in self.checks} - {CheckStatus.NOT_APPLICABLE}
        if CheckStatus.FAILED in statuses:
            return Indication.FAILED
        if statuses == {CheckStatus.PASSED}:
            return Indication.PASSED
        return Indication.INDETERMINATE

    @property
    def sub_indication(self) -> SubIndication | PathSubIndication | None:
        """That of the first deciding check, in the standard's order of the checks."""
        wanted = {
            Indication.FAILED: CheckStatus.FAILED,
            Indication.INDETERMINATE: CheckStatus.INDETERMINATE,
        }.get(self.indication)
        return next(
            (c.sub_indication for c in self.checks if c.status is wanted and c.sub_indication),
            None,
        )

    def check(self, name: CheckName) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


class TrustContext(Protocol):
    """What verification needs beyond the structures: trust anchors, revocation, the TSA's
    trust and the seal registry (``seals.validation.SealTrust``)."""

    def certificate(
        self, name: CheckName, revocation: CheckName, cert_der: bytes, at: datetime | None
    ) -> tuple[Check, Check]:
        """The chain (with validity and key usage) and the revocation check of a
        certificate at ``at`` (None: now)."""

    def timestamp(
        self, name: CheckName, token: bytes, stamped: bytes
    ) -> tuple[Check, datetime | None]:
        """A timestamp token over ``stamped``; its genTime when it verifies."""

    def seal_status(
        self, seal: ParsedSeal, at: datetime | None, proven: datetime | None, signing: bool
    ) -> Check:
        """The registry status of ``seal`` at ``at`` (the signing time when ``signing``)
        and at the proven time."""


# SM2-1 (301.1) implies SM3 with Z as 501 does; some producers write it for signatures.
_SM2_ALGORITHMS = frozenset({oids.SM3_WITH_SM2, oids.SM2_SIGN})

_NO_ANCHOR = "not checked: no trust anchor configured"

# CertDigestObj.type is free text: the names and OIDs producers are known to write.
_CERT_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "SM3": hashes.SM3,
    oids.SM3: hashes.SM3,
    "SHA1": hashes.SHA1,
    "1.3.14.3.2.26": hashes.SHA1,
    "SHA256": hashes.SHA256,
    oids.SHA256: hashes.SHA256,
}


def verify_seal(
    seal: bytes | ParsedSeal,
    *,
    at: datetime | None = None,
    sm2_backend: SM2Backend | None = None,
    context: TrustContext | None = None,
) -> VerificationResult:
    """Checks on a seal by itself; ``at`` (aware) is the time to test the validity window
    at (with a ``context``, None means now)."""
    if isinstance(seal, bytes):
        try:
            seal = parse_seal(seal)
        except (MalformedASN1, UnsupportedSealVersion) as exc:
            return _unparsed(exc)
    if at is None:
        validity = _not_checked(CheckName.SEAL_VALIDITY, "no verification time given")
    else:
        validity = _window(seal, at, "at the verification time")
    maker, maker_revocation = _certificate(
        context, CheckName.SEAL_MAKER_CERTIFICATE, CheckName.SEAL_MAKER_REVOCATION,
        seal.maker_cert, at, "maker",
    )  # fmt: skip
    return VerificationResult(
        seal.version,
        (
            _format(seal.version, "SESeal", seal.deviations),
            _maker_signature(seal, sm2_backend),
            maker,
            maker_revocation,
            validity,
            _seal_timestamp(seal, context),
            _seal_status(context, seal, at, None, signing=False),
        ),
    )


def verify_signature(
    signature: bytes | ParsedSealSignature,
    *,
    original: bytes | None = None,
    original_sm3: bytes | None = None,
    sm2_backend: SM2Backend | None = None,
    context: TrustContext | None = None,
) -> VerificationResult:
    """Checks on an ``SES_Signature`` and its embedded seal. Give the signed original (for
    OFD, the bytes of Signature.xml) or its SM3 digest to have dataHash compared."""
    if original is not None and original_sm3 is not None:
        raise ValidationFailed("give the original or its SM3 digest, not both")
    if original_sm3 is not None and len(original_sm3) != DIGEST_SIZE:
        raise InvalidLength(f"an SM3 digest is {DIGEST_SIZE} bytes, got {len(original_sm3)}")
    if isinstance(signature, bytes):
        try:
            signature = parse_signature(signature)
        except (MalformedASN1, UnsupportedSealVersion) as exc:
            return _unparsed(exc)
    seal = signature.seal
    if signature.signing_time is None:
        validity = _not_checked(CheckName.SEAL_VALIDITY, "timeInfo is not a time string")
    else:
        validity = _window(seal, signature.signing_time, "at the signing time (timeInfo)")
    digest = sm3(original) if original is not None else original_sm3
    signer_signature = _signer_signature(signature, sm2_backend)
    if signature.timestamp is not None and context is not None:
        stamp_check, proven = context.timestamp(
            CheckName.SIGNATURE_TIMESTAMP, signature.timestamp, signature.signature
        )
    else:
        stamp_check, proven = _timestamp(CheckName.SIGNATURE_TIMESTAMP, signature.timestamp), None
    # The signer's certificate at the proven time when there is one, else at timeInfo.
    when = proven or signature.signing_time
    maker, maker_revocation = _certificate(
        context, CheckName.SEAL_MAKER_CERTIFICATE, CheckName.SEAL_MAKER_REVOCATION,
        seal.maker_cert, when, "maker",
    )  # fmt: skip
    signer, signer_revocation = _certificate(
        context, CheckName.SIGNER_CERTIFICATE, CheckName.SIGNER_REVOCATION,
        signature.signer_cert, when, "signer",
    )  # fmt: skip
    return VerificationResult(
        signature.version,
        (
            _format(signature.version, "SES_Signature", signature.deviations + seal.deviations),
            signer_signature,
            _signer_in_seal(signature),
            _maker_signature(seal, sm2_backend),
            maker,
            maker_revocation,
            validity,
            signer,
            signer_revocation,
            _data_hash(signature, digest),
            stamp_check,
            _seal_timestamp(seal, context),
            _seal_status(context, seal, signature.signing_time, proven, signing=True),
        ),
        signing_time=signature.signing_time,
        proven_time=proven,
    )


# --- the checks --------------------------------------------------------------------


def _unparsed(exc: MalformedASN1 | UnsupportedSealVersion) -> VerificationResult:
    sub = (
        SubIndication.UNSUPPORTED_SEAL_VERSION
        if isinstance(exc, UnsupportedSealVersion)
        else SubIndication.FORMAT_FAILURE
    )
    return VerificationResult(None, (_failed(CheckName.FORMAT, sub, exc.detail),))


def _format(version: SealVersion, what: str, deviations: tuple[str, ...]) -> Check:
    message = f"{version.name} {what}"
    if deviations:
        message += "; tolerated: " + "; ".join(deviations)
    return Check(CheckName.FORMAT, CheckStatus.PASSED, None, message)


_V1_RANGE = "SEQUENCE{sealInfo, cert, alg}"
_V4_RANGE = "DER(SES_SealInfo)"


def _maker_signature(seal: ParsedSeal, backend: SM2Backend | None) -> Check:
    # A verifier sees one seal in many stamps: its maker signature is checked once.
    return _known_maker_signature(seal.der) if backend is None else _check_maker(seal, backend)


@lru_cache(maxsize=64)  # keys are whole seals (pictures up to 256 KiB)
def _known_maker_signature(der: bytes) -> Check:
    return _check_maker(parse_seal(der), None)


def _check_maker(seal: ParsedSeal, backend: SM2Backend | None) -> Check:
    name, sub = CheckName.SEAL_MAKER_SIGNATURE, SubIndication.SEAL_MAKER_SIGNATURE_INVALID
    # (signed bytes, what they are, what a pass means)
    rules = [(seal.maker_signed_bytes, _V1_RANGE, f"over {_V1_RANGE} (v1 rule)")]
    if seal.version is not SealVersion.V1:
        rules = [(seal.maker_signed_bytes, _V4_RANGE, f"over {_V4_RANGE}")]
        if seal.maker_signed_bytes_fallback is not None:
            rules.append(
                (
                    seal.maker_signed_bytes_fallback,
                    _V1_RANGE,
                    f"only over {_V1_RANGE} (the v1 rule), "
                    f"not over {_V4_RANGE} as GB/T 38540 requires",
                )
            )
    try:
        matched = _sm2_verify(
            seal.maker_cert,
            seal.signature_algorithm,
            seal.signature,
            [signed for signed, _, _ in rules],
            backend,
        )
    except _Unusable as exc:
        return _failed(name, exc.sub or sub, f"maker signature: {exc}")
    if matched is None:
        tried = " nor ".join(what for _, what, _ in rules)
        return _failed(name, sub, f"maker signature does not verify over {tried}")
    return Check(name, CheckStatus.PASSED, None, f"maker signature verifies {rules[matched][2]}")


def _signer_signature(signature: ParsedSealSignature, backend: SM2Backend | None) -> Check:
    name, sub = CheckName.SIGNER_SIGNATURE, SubIndication.SIG_CRYPTO_FAILURE
    try:
        matched = _sm2_verify(
            signature.signer_cert,
            signature.signature_algorithm,
            signature.signature,
            [signature.signer_signed_bytes],
            backend,
        )
    except _Unusable as exc:
        return _failed(name, exc.sub or sub, f"signer signature: {exc}")
    if matched is None:
        return _failed(name, sub, "signer signature does not verify over DER(TBS_Sign)")
    return Check(name, CheckStatus.PASSED, None, "signer signature verifies over DER(TBS_Sign)")


def _signer_in_seal(signature: ParsedSealSignature) -> Check:
    name, sub = CheckName.SIGNER_IN_SEAL, SubIndication.SIGNER_NOT_IN_SEAL
    prop = signature.seal.info.property
    cert = signature.signer_cert
    if prop.cert_list_type is CertListType.CERTIFICATES:
        for index, listed in enumerate(prop.certificates):
            if listed == cert:
                return Check(name, CheckStatus.PASSED, None, f"signer is certList entry {index}")
        return _failed(name, sub, f"signer is none of the {len(prop.certificates)} certificates")
    unknown = set()
    for index, entry in enumerate(prop.cert_digests):
        algorithm = _CERT_DIGESTS.get(entry.algorithm.upper().replace("-", "").replace("_", ""))
        if algorithm is None:
            unknown.add(entry.algorithm)
            continue
        h = hashes.Hash(algorithm())
        h.update(cert)
        if hmac.compare_digest(h.finalize(), entry.value):
            message = f"signer matches certList digest {index} ({entry.algorithm})"
            return Check(name, CheckStatus.PASSED, None, message)
    message = f"signer matches none of the {len(prop.cert_digests)} certificate digests"
    if unknown:
        message += f"; digest algorithms not known: {', '.join(sorted(unknown))}"
    return _failed(name, sub, message)


def _window(seal: ParsedSeal, when: datetime, what: str) -> Check:
    prop = seal.info.property
    span = f"{prop.valid_start.isoformat()} .. {prop.valid_end.isoformat()}"
    if when < prop.valid_start:
        return _failed(
            CheckName.SEAL_VALIDITY,
            SubIndication.SEAL_NOT_YET_VALID,
            f"{when.isoformat()} is before the seal's validity {span}",
        )
    if when > prop.valid_end:
        return _failed(
            CheckName.SEAL_VALIDITY,
            SubIndication.SEAL_EXPIRED,
            f"{when.isoformat()} is after the seal's validity {span}",
        )
    return Check(
        CheckName.SEAL_VALIDITY, CheckStatus.PASSED, None, f"seal valid {what} ({when.isoformat()})"
    )


def _data_hash(signature: ParsedSealSignature, digest: bytes | None) -> Check:
    if digest is None:
        return _not_checked(CheckName.DATA_HASH, "original not supplied")
    if hmac.compare_digest(digest, signature.data_hash):
        return Check(CheckName.DATA_HASH, CheckStatus.PASSED, None, "dataHash = SM3(original)")
    return _failed(
        CheckName.DATA_HASH,
        SubIndication.DATA_HASH_MISMATCH,
        f"dataHash {signature.data_hash.hex()} differs from SM3(original) {digest.hex()}",
    )


def _seal_timestamp(seal: ParsedSeal, context: TrustContext | None) -> Check:
    if seal.version is not SealVersion.V5:
        message = f"{seal.version.name} seals carry none"
        return Check(CheckName.SEAL_TIMESTAMP, CheckStatus.NOT_APPLICABLE, None, message)
    check = _timestamp(CheckName.SEAL_TIMESTAMP, seal.timestamp)
    if context is None or seal.timestamp is None or check.sub_indication is not None:
        return check
    return context.timestamp(CheckName.SEAL_TIMESTAMP, seal.timestamp, seal.signature)[0]


def _certificate(
    context: TrustContext | None,
    name: CheckName,
    revocation: CheckName,
    cert_der: bytes,
    at: datetime | None,
    who: str,
) -> tuple[Check, Check]:
    if context is None:
        return (
            _not_checked(name, f"{who} certificate {_NO_ANCHOR}"),
            _not_checked(revocation, f"{who} certificate revocation {_NO_ANCHOR}"),
        )
    return context.certificate(name, revocation, cert_der, at)


def _seal_status(
    context: TrustContext | None,
    seal: ParsedSeal,
    at: datetime | None,
    proven: datetime | None,
    *,
    signing: bool,
) -> Check:
    if context is None:
        return _not_checked(CheckName.SEAL_STATUS, "not checked: no seal registry configured")
    return context.seal_status(seal, at, proven, signing)


def _timestamp(name: CheckName, token: bytes | None) -> Check:
    """Presence and shape only: verifying the token needs the TSA's trust anchor. An
    unparseable token is reported, not fatal: the rest of the signature stands without it."""
    if token is None:
        return Check(name, CheckStatus.NOT_APPLICABLE, None, "no timestamp present")
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native not in ("signed_data", "sm2_signed_data"):
            raise ValueError("not SignedData")
        encap = info["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise ValueError("not a TSTInfo")
        gen_time = encap["content"].parsed["gen_time"].native
        if not isinstance(gen_time, datetime):
            raise ValueError("bad genTime")
    # Anything asn1crypto raises on a token means the same here: it cannot be read.
    except Exception:
        return Check(
            name,
            CheckStatus.NOT_CHECKED,
            SubIndication.TIMESTAMP_UNPARSEABLE,
            f"unparseable timestamp ({len(token)} bytes, not a CMS TimeStampToken)",
        )
    return _not_checked(
        name, f"timestamp token with genTime {gen_time.isoformat()}; its signature {_NO_ANCHOR}"
    )


# --- helpers -----------------------------------------------------------------------


class _Unusable(Exception):
    """The signature cannot be evaluated: unknown algorithm, unreadable cert or value."""

    def __init__(self, message: str, sub: SubIndication | None = None) -> None:
        super().__init__(message)
        self.sub = sub


def _sm2_verify(
    cert_der: bytes,
    algorithm: str,
    signature: bytes,
    messages: list[bytes],
    backend: SM2Backend | None,
) -> int | None:
    """Index of the first message ``signature`` verifies over with the cert's key, or None."""
    if algorithm not in _SM2_ALGORITHMS:
        raise _Unusable(f"algorithm {algorithm} is not SM3withSM2", SubIndication.FORMAT_FAILURE)
    key = _certificate_key(cert_der, backend)
    for index, message in enumerate(messages):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        except InvalidSignatureEncoding:
            # A mangled value is a signature that does not verify, not a format problem.
            raise _Unusable("the value is not a DER SEQUENCE{r, s}") from None
        return index
    return None


def _certificate_key(cert_der: bytes, backend: SM2Backend | None) -> SM2PublicKey:
    # Verifiers see the same few maker and signer certificates again and again.
    return _load_certificate_key(cert_der, backend) if backend else _default_key(cert_der)


@lru_cache(maxsize=1024)
def _default_key(cert_der: bytes) -> SM2PublicKey:
    return _load_certificate_key(cert_der, None)


def _load_certificate_key(cert_der: bytes, backend: SM2Backend | None) -> SM2PublicKey:
    try:
        cert = x509.Certificate.load(cert_der, strict=True)
        spki = cert["tbs_certificate"]["subject_public_key_info"].dump()
        key = load_public_key(spki, sm2_backend=backend)
    except TrustError as exc:
        raise _Unusable(f"certificate key: {exc.detail}", SubIndication.FORMAT_FAILURE) from None
    # asn1crypto reports a certificate that does not parse with assorted exceptions.
    except Exception:
        raise _Unusable("certificate does not parse", SubIndication.FORMAT_FAILURE) from None
    if not isinstance(key, SM2PublicKey):
        message = f"certificate key is {key.algorithm}, not SM2"
        raise _Unusable(message, SubIndication.FORMAT_FAILURE)
    return key


def _failed(name: CheckName, sub: SubIndication, message: str) -> Check:
    return Check(name, CheckStatus.FAILED, sub, message)


def _not_checked(name: CheckName, message: str) -> Check:
    return Check(name, CheckStatus.NOT_CHECKED, None, message)
