"""Verifying a time-stamp token: CMS signature, TSTInfo, imprint, ESS certificate binding.

Returns typed results; whether the TSA certificate chains to a trusted root is the
validation layer's question, not this module's.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import core, tsp, x509

from timestamp.protocol import IMPRINT_ALGORITHMS, TimeStampResp
from trust.cms import ID_CT_TSTINFO, SignedDataResult, verify_signed_data
from trust.cms.algorithms import digest as compute_digest
from trust.cms.asn1 import load_strict
from trust.errors import MalformedASN1


@dataclass(frozen=True)
class TokenVerification:
    cms: SignedDataResult
    signer_certificate: x509.Certificate | None
    policy: str
    serial_number: int
    gen_time: datetime
    accuracy: timedelta | None
    ordering: bool
    nonce: int | None
    tsa_name: x509.GeneralName | None
    hash_algorithm: str  # our name (sm3, sha256, ...) or the dotted OID when unknown
    imprint: bytes
    signature_ok: bool  # CMS signature and messageDigest over TSTInfo
    ess_ok: bool  # signingCertificate(V2) present and naming the signer certificate
    eku_ok: bool  # the signer certificate has only id-kp-timeStamping, critical (RFC 3161 §2.3)
    imprint_ok: bool | None  # None when neither data nor digest was given
    problems: tuple[str, ...]

    @property
    def serial_hex(self) -> str:
        return format(self.serial_number, "x")

    @property
    def ok(self) -> bool:
        return self.signature_ok and self.ess_ok and self.eku_ok and self.imprint_ok is not False


@dataclass(frozen=True)
class ParsedResponse:
    status: str  # granted, rejection, ...
    failure_info: frozenset[str]
    status_text: tuple[str, ...]
    token: bytes | None


def parse_response(data: bytes) -> ParsedResponse:
    resp = load_strict(TimeStampResp, data, "TimeStampResp")
    status = resp["status"]
    token = resp["time_stamp_token"]
    fail_info = status["fail_info"].native
    return ParsedResponse(
        status=status["status"].native,
        failure_info=frozenset(fail_info or ()),
        status_text=tuple(status["status_string"].native or ()),
        token=None if isinstance(token, core.Void) else token.dump(),
    )


def _accuracy(value: tsp.Accuracy | core.Void) -> timedelta | None:
    if isinstance(value, core.Void):
        return None
    parts = value.native
    return timedelta(
        seconds=parts["seconds"] or 0,
        milliseconds=parts["millis"] or 0,
        microseconds=parts["micros"] or 0,
    )


def _eku_ok(certificate: x509.Certificate | None) -> bool:
    if certificate is None:
        return False
    ext = certificate.extended_key_usage_value
    critical = "extended_key_usage" in certificate.critical_extensions
    return critical and ext is not None and ext.native == ["time_stamping"]


def verify_token(
    token: bytes,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
) -> TokenVerification:
    """Check a DER TimeStampToken; ``data`` (hashed here) or ``digest`` is what it should
    stamp. ``extra_certificates`` supply the TSA certificate when the token lacks it."""
    signed = verify_signed_data(token, extra_certificates=extra_certificates)
    problems: list[str] = list(signed.problems)
    if signed.content_type != ID_CT_TSTINFO:
        raise MalformedASN1("the SignedData does not hold a TSTInfo")
    if len(signed.signers) != 1 or signed.content is None:
        raise MalformedASN1("a time-stamp token has exactly one signer and its TSTInfo")
    info = load_strict(tsp.TSTInfo, signed.content, "TSTInfo")
    signer = signed.signers[0]
    problems.extend(signer.problems)
    if signer.ess_certificate_ok is None:
        problems.append("no ESS signing certificate attribute")
    eku_ok = _eku_ok(signer.certificate)
    if signer.certificate is not None and not eku_ok:
        problems.append("TSA certificate lacks a critical extended key usage timeStamping only")

    imprint = info["message_imprint"]
    algorithm_oid = imprint["hash_algorithm"]["algorithm"].dotted
    hash_name = IMPRINT_ALGORITHMS.get(algorithm_oid)
    hashed = imprint["hashed_message"].native
    imprint_ok: bool | None = None
    if data is not None or digest is not None:
        if hash_name is None:
            problems.append(f"imprint hash algorithm {algorithm_oid} is not supported")
            imprint_ok = False
        else:
            expected = compute_digest(hash_name, data) if data is not None else digest
            imprint_ok = expected is not None and hmac.compare_digest(expected, hashed)
            if not imprint_ok:
                problems.append("message imprint does not match")
    tsa = info["tsa"]
    return TokenVerification(
        cms=signed,
        signer_certificate=signer.certificate,
        policy=info["policy"].dotted,
        serial_number=info["serial_number"].native,
        gen_time=info["gen_time"].native,
        accuracy=_accuracy(info["accuracy"]),
        ordering=bool(info["ordering"].native),
        nonce=info["nonce"].native,
        tsa_name=None if isinstance(tsa, core.Void) else tsa,
        hash_algorithm=hash_name or algorithm_oid,
        imprint=hashed,
        signature_ok=signer.signature_ok and signer.digest_ok,
        ess_ok=signer.ess_certificate_ok is True,
        eku_ok=eku_ok,
        imprint_ok=imprint_ok,
        problems=tuple(problems),
    )
