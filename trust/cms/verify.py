"""Parsing and cryptographic verification of CMS SignedData (RFC 5652, GM/T 0010).

Accepted on input, beyond what ``trust.cms.build`` writes:
- ContentInfo types id-signedData (1.2.840.113549.1.7.2) and GM/T 0010 signedData
  (1.2.156.10197.6.1.4.2.2), data types id-data and GM data;
- SM2 signatures named SM2-1 (1.2.156.10197.1.301.1) or SM3withSM2 (.501), with Z over
  the default ID; digest algorithm parameters NULL or absent;
- no signed attributes (the signature covers the raw content, CFCA SADK style) or
  signed attributes (it covers their DER SET OF);
- ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512, SignerIdentifier by issuer and
  serial or by subject key identifier.

Only the signature and the content digest are checked here; certificate paths,
validity periods and revocation are the validation layer's job.
Input that does not parse raises ``MalformedASN1``; everything that parses ends
in a ``SignedDataResult`` whose ``problems`` say what failed.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, core, tsp, x509
from cryptography import exceptions as pyca_exceptions
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes as PyPublicKey

from trust import oids
from trust.cms.algorithms import DIGEST_OIDS, digest, hash_class
from trust.cms.asn1 import encoding, load_strict, shared_certificate
from trust.errors import MalformedASN1, TrustError
from trust.keys import PublicKey, load_public_key

# Bounds on work per input: verification cost grows with signers x certificates.
MAX_SIGNERS = 16
MAX_CERTIFICATES = 64

_SIGNED_DATA_TYPES = frozenset({"signed_data", "sm2_signed_data"})
_DIGEST_NAMES = {oid: name for name, oid in DIGEST_OIDS.items()}
# signatureAlgorithm OID -> (key kind, hash it implies or None: the digestAlgorithm's)
_SIGNATURE_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    oids.SM2_SIGN: ("sm2", "sm3"),
    oids.SM3_WITH_SM2: ("sm2", "sm3"),
    oids.EC_PUBLIC_KEY: ("ecdsa", None),
    oids.ECDSA_WITH_SHA256: ("ecdsa", "sha256"),
    oids.ECDSA_WITH_SHA384: ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    oids.RSA_ENCRYPTION: ("rsa", None),
    oids.SHA256_WITH_RSA: ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
}
DIGEST_MISMATCH = "message digest does not match the content"  # a SignerResult problem
_SINGLE_VALUED = ("content_type", "message_digest", "signing_time")


@dataclass(frozen=True)
class SignerResult:
    """One SignerInfo. ``digest_ok``: the messageDigest attribute matches the content
    (without signed attributes the signature covers the content, so it equals
    ``signature_ok``). ``ess_certificate_ok``: None when there is no ESS
    signingCertificate(V2) attribute, else whether its first ESSCertID names the
    signer certificate."""

    certificate: x509.Certificate | None
    digest_algorithm: str
    signature_algorithm: str
    signed_attributes: cms.CMSAttributes | None
    unsigned_attributes: cms.CMSAttributes | None  # e.g. signature timestamps
    digest_ok: bool
    signature_ok: bool
    ess_certificate_ok: bool | None
    signing_time: datetime | None
    signature: bytes
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.digest_ok and self.signature_ok and self.ess_certificate_ok is not False


@dataclass(frozen=True)
class SignedDataResult:
    content_info_type: str  # dotted OID: PKCS#7 or GM/T 0010 signedData
    content_type: str  # dotted eContentType
    content: bytes | None  # the encapsulated content, or the detached content given
    detached: bool
    certificates: tuple[x509.Certificate, ...]
    signers: tuple[SignerResult, ...]
    problems: tuple[str, ...]  # about the SignedData as a whole, not one signer

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.signers) and all(s.ok for s in self.signers)


def load_content_info(data: bytes) -> cms.ContentInfo:
    """A fully parsed ContentInfo holding SignedData, or ``MalformedASN1``."""
    info = load_strict(cms.ContentInfo, data, "CMS ContentInfo")
    kind = info["content_type"].native
    if kind not in _SIGNED_DATA_TYPES:
        raise MalformedASN1(f"content type {info['content_type'].dotted} is not SignedData")
    signed = info["content"]
    if len(signed["signer_infos"]) > MAX_SIGNERS:
        raise MalformedASN1(f"more than {MAX_SIGNERS} signers")
    if len(signed["certificates"]) > MAX_CERTIFICATES:
        raise MalformedASN1(f"more than {MAX_CERTIFICATES} certificates")
    return info


def verify_signed_data(
    data: bytes,
    *,
    content: bytes | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
) -> SignedDataResult:
    """Parse DER/BER ContentInfo ``data`` and check every signer's digest and signature.

    ``content`` is the detached content; ``extra_certificates`` are searched for
    signer certificates after those in the SignedData.
    """
    info = load_content_info(data)
    signed = info["content"]
    encap = signed["encap_content_info"]
    content_type = encap["content_type"].dotted
    try:
        embedded = _encapsulated(encap["content"])
    except Exception:  # asn1crypto's assorted parse errors, as in load_content_info
        raise MalformedASN1("encapsulated content does not parse") from None
    problems: list[str] = []
    if embedded is not None:
        if content is not None and content != embedded:
            problems.append("the content given differs from the encapsulated content")
        content = embedded
    certificates = tuple(
        shared_certificate(c.chosen.dump())
        for c in signed["certificates"]
        if c.name == "certificate"
    )
    pool = (*certificates, *extra_certificates)
    signers = tuple(
        _verify_signer(si, content, content_type, pool) for si in signed["signer_infos"]
    )
    return SignedDataResult(
        content_info_type=info["content_type"].dotted,
        content_type=content_type,
        content=content,
        detached=embedded is None,
        certificates=certificates,
        signers=signers,
        problems=tuple(problems),
    )


def _encapsulated(value: core.Asn1Value) -> bytes | None:
    if isinstance(value, core.Void):
        return None
    if isinstance(value, core.OctetString | core.ParsableOctetString):
        return bytes(value)
    # SignedData v1 is parsed as PKCS#7, where a type other than data stays ANY.
    inner = value.parse()
    if inner.class_ == 0 and inner.tag == 4:
        # CMS-style OCTET STRING wrapping inside a v1 structure (OpenSSL, GM producers)
        return bytes(core.OctetString.load(inner.dump()))
    contents: bytes = inner.contents  # RFC 2315 §9.3: the DER contents octets are digested
    return contents


def _find_certificate(
    sid: cms.SignerIdentifier, pool: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        for cert in pool:
            if cert.serial_number == serial and cert.issuer.dump() == issuer.dump():
                return cert
        return None
    for cert in pool:
        if cert.key_identifier is not None and cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _attributes(attrs: cms.CMSAttributes, problems: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for attr in attrs:
        kind = attr["type"].native
        if kind in found:
            problems.append(f"signed attribute {kind} appears twice")
        found[kind] = list(attr["values"])
    for kind in _SINGLE_VALUED:
        if kind in found and len(found[kind]) != 1:
            problems.append(f"signed attribute {kind} must have exactly one value")
    return found


def _verify_signer(
    si: cms.SignerInfo,
    content: bytes | None,
    content_type: str,
    pool: Sequence[x509.Certificate],
) -> SignerResult:
    problems: list[str] = []
    digest_oid = si["digest_algorithm"]["algorithm"].dotted
    digest_name = _DIGEST_NAMES.get(digest_oid)
    sig_oid = si["signature_algorithm"]["algorithm"].dotted
    signature = si["signature"].native
    certificate = _find_certificate(si["sid"], pool)
    if digest_name is None:
        problems.append(f"digest algorithm {digest_oid} is not supported")
    if certificate is None:
        problems.append("signer certificate not found")

    attrs, unsigned = si["signed_attrs"], si["unsigned_attrs"]
    signing_time = None
    ess_ok: bool | None = None
    digest_ok = False
    if isinstance(attrs, core.Void):
        signed_attributes = None
        message = content
    else:
        signed_attributes = attrs
        # The signature covers the attributes as a DER SET OF, not as the [0] field.
        message = b"\x31" + attrs.dump()[1:]
        found = _attributes(attrs, problems)
        digest_ok = _check_digest(found, digest_name, content, content_type, problems)
        time_values = found.get("signing_time")
        if time_values:
            signing_time = time_values[0].native
        ess_ok = _check_ess(found, certificate, problems)

    signature_ok = False
    if message is None:
        problems.append("detached content not supplied")
    elif certificate is not None and digest_name is not None:
        signature_ok = _check_signature(
            certificate, sig_oid, digest_name, signature, message, problems
        )
    if signed_attributes is None:
        digest_ok = signature_ok
    return SignerResult(
        certificate=certificate,
        digest_algorithm=digest_name or digest_oid,
        signature_algorithm=sig_oid,
        signed_attributes=signed_attributes,
        unsigned_attributes=None if isinstance(unsigned, core.Void) else unsigned,
        digest_ok=digest_ok,
        signature_ok=signature_ok,
        ess_certificate_ok=ess_ok,
        signing_time=signing_time,
        signature=signature,
        problems=tuple(problems),
    )


def _check_digest(
    found: dict[str, list[Any]],
    digest_name: str | None,
    content: bytes | None,
    content_type: str,
    problems: list[str],
) -> bool:
    types = found.get("content_type")
    type_ok = types is not None and len(types) > 0 and types[0].dotted == content_type
    if not types:
        problems.append("signed attribute content_type is missing")
    elif not type_ok:
        problems.append("signed attribute content_type differs from eContentType")
    digests = found.get("message_digest")
    if not digests:
        problems.append("signed attribute message_digest is missing")
        return False
    if content is None or digest_name is None:
        return False
    expected = digest(digest_name, content)
    if not hmac.compare_digest(expected, digests[0].native):
        problems.append(DIGEST_MISMATCH)
        return False
    return type_ok


def _check_ess(
    found: dict[str, list[Any]], certificate: x509.Certificate | None, problems: list[str]
) -> bool | None:
    """RFC 2634 / RFC 5035: the first ESSCertID(v2) must identify the signer certificate."""
    kind = next((k for k in _ESS_KINDS if k in found), None)
    if kind is None:
        return None
    cert_der = encoding(certificate) if certificate is not None else None
    ok, problem = _ess_binding(kind, found[kind][0].dump(), cert_der)
    if problem is not None:
        problems.append(problem)
    return ok


_ESS_KINDS = ("signing_certificate_v2", "signing_certificate")


@functools.lru_cache(maxsize=1024)
def _ess_binding(kind: str, value_der: bytes, cert_der: bytes | None) -> tuple[bool, str | None]:
    """(binds, problem) for an ESS attribute value and a signer certificate. Cached: a
    signer's CMS all carry the same value, and reading it costs a tenth of a verification."""
    if kind == "signing_certificate_v2":
        first = tsp.SigningCertificateV2.load(value_der)["certs"][0]
        hash_oid = first["hash_algorithm"]["algorithm"].dotted
        hash_name = _DIGEST_NAMES.get(hash_oid)
        if hash_name is None:
            return False, f"ESSCertIDv2 hash {hash_oid} is not supported"
        hasher: type[hashes.HashAlgorithm] = hash_class(hash_name)
    else:
        first = tsp.SigningCertificate.load(value_der)["certs"][0]
        hasher = hashes.SHA1  # ESSCertID v1 is defined with SHA-1 (RFC 2634)
    if cert_der is None:
        return False, None
    certificate = shared_certificate(cert_der)
    h = hashes.Hash(hasher())
    h.update(cert_der)
    ok = hmac.compare_digest(h.finalize(), first["cert_hash"].native)
    issuer_serial = first["issuer_serial"]
    if ok and not isinstance(issuer_serial, core.Void):
        ok = issuer_serial["serial_number"].native == certificate.serial_number and any(
            name.name == "directory_name"
            # The [4]-tagged Name and the issuer hold the same contents octets when equal
            # (untag().dump() would re-encode the name).
            and name.chosen.contents == certificate.issuer.contents
            for name in issuer_serial["issuer"]
        )
    return ok, None if ok else "ESS signing certificate attribute does not match the signer"


def _check_signature(
    certificate: x509.Certificate,
    sig_oid: str,
    digest_name: str,
    signature: bytes,
    message: bytes,
    problems: list[str],
) -> bool:
    algorithm = _SIGNATURE_ALGORITHMS.get(sig_oid)
    if algorithm is None:
        problems.append(f"signature algorithm {sig_oid} is not supported")
        return False
    kind, implied_hash = algorithm
    if implied_hash is not None and implied_hash != digest_name:
        problems.append("signature algorithm and digest algorithm disagree")
        return False
    spki = certificate["tbs_certificate"]["subject_public_key_info"]
    is_sm2 = spki.algorithm in ("ec", "sm2") and _curve(spki) == oids.SM2_CURVE_NAME
    if (kind == "sm2") != is_sm2:
        problems.append("signature algorithm does not match the certificate key")
        return False
    try:
        if is_sm2:
            _public_key(spki.dump()).verify(signature, message)
        else:
            _verify_pyca(spki.dump(), kind, hash_class(digest_name)(), signature, message)
    except TrustError as exc:
        problems.append(f"signature does not verify ({exc.code})")
        return False
    except (pyca_exceptions.InvalidSignature, pyca_exceptions.UnsupportedAlgorithm, ValueError):
        problems.append("signature does not verify")
        return False
    return True


def _curve(spki: x509.PublicKeyInfo) -> str | None:
    params = spki["algorithm"]["parameters"]
    if params.name != "named":
        return None
    name: str = params.chosen.native
    return name


@functools.lru_cache(maxsize=256)
def _public_key(spki: bytes) -> PublicKey:
    # The same signers verify CMS after CMS, and loading a key (point checks, an EVP key)
    # costs about as much as a verification. Keys are immutable, safe to share.
    return load_public_key(spki)


@functools.lru_cache(maxsize=256)
def _pyca_public_key(spki: bytes) -> PyPublicKey:
    return serialization.load_der_public_key(spki)


def _verify_pyca(
    spki: bytes, kind: str, hash_algorithm: hashes.HashAlgorithm, signature: bytes, message: bytes
) -> None:
    key = _pyca_public_key(spki)
    if kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hash_algorithm))
    elif kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, message, padding.PKCS1v15(), hash_algorithm)
    else:
        raise ValueError("key type does not match the signature algorithm")
