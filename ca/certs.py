"""X.509 pieces built and checked with asn1crypto: names, times, serials, extensions,
signing a TBS structure through a ``CaKeySigner``, PKCS#10 parsing with proof of
possession, and certificate signature verification.

Everything is built with asn1crypto rather than ``cryptography.x509``: pyca's
builders sign only with keys pyca holds and it has no SM2, so they cannot make
an SM3withSM2 certificate, CRL or OCSP response; the DER to be signed is handed
to the signer instead.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, x509
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys

from ca.signer import CaKeySigner, load_public_key, signature_algorithm, verify_signature
from trust import oids
from trust.errors import (
    CsrSignatureInvalid,
    InvalidSignature,
    MalformedASN1,
    ProfileSanInvalid,
    ProfileSubjectInvalid,
    SubjectAttributeTooLong,
)
from trust.keys import PublicKey
from trust.keys.base import is_pem, load_der, pem_blocks, to_pem

_ = oids  # GM OIDs must be registered before SM2 keys and signatures are parsed

SERIAL_BITS = 128
# RFC 5280 §4.1.2.5: dates through 2049 as UTCTime, from 2050 as GeneralizedTime.
_UTC_TIME_LIMIT = datetime(2050, 1, 1, tzinfo=UTC)

# Short names (RFC 4514 and OpenSSL) accepted for subject attributes, to asn1crypto names.
_ALIASES = {
    "C": "country_name",
    "ST": "state_or_province_name",
    "L": "locality_name",
    "O": "organization_name",
    "OU": "organizational_unit_name",
    "CN": "common_name",
    "serialNumber": "serial_number",
    "emailAddress": "email_address",
    "GN": "given_name",
    "SN": "surname",
    "organizationIdentifier": "organization_identifier",
}
_SHORT = {v: k for k, v in _ALIASES.items()}
_KNOWN_TYPES = frozenset(x509.NameType._map.values())
# RFC 5280 Appendix A upper bounds, in characters (ub-common-name etc.); X.520 attributes
# without their own bound are X520name, ub-name. organizationIdentifier: X.520 ub-match.
_UPPER_BOUNDS = {
    "country_name": 2,
    "common_name": 64,
    "locality_name": 128,
    "state_or_province_name": 128,
    "organization_name": 64,
    "organizational_unit_name": 64,
    "title": 64,
    "serial_number": 64,
    "email_address": 255,
    "pseudonym": 128,
    "organization_identifier": 128,
}
_UB_NAME = 32768


def new_serial() -> int:
    """128 random bits from the OS CSPRNG; positive (never zero), at most 17 DER octets."""
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial:
            return serial


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def parse_serial_hex(text: str) -> str:
    """The canonical store form (lower-case hex, no leading zeros) of a hex serial."""
    cleaned = text.replace(":", "").strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{1,40}", cleaned) or int(cleaned, 16) == 0:
        raise ProfileSubjectInvalid("serial number must be 1 to 40 hex digits, not zero")
    return serial_hex(int(cleaned, 16))


def x509_time(when: datetime) -> x509.Time:
    when = when.astimezone(UTC).replace(microsecond=0)
    if when < _UTC_TIME_LIMIT:
        return x509.Time({"utc_time": when})
    return x509.Time({"general_time": when})


# --- names ---------------------------------------------------------------------


def normalise_subject(subject: Mapping[str, str]) -> dict[str, str]:
    """Attribute names to asn1crypto's (``CN`` -> ``common_name``), values stripped."""
    result: dict[str, str] = {}
    for key, value in subject.items():
        name = _ALIASES.get(key, key)
        if name not in _KNOWN_TYPES:
            raise ProfileSubjectInvalid(f"unknown subject attribute {key!r}")
        text = str(value).strip()
        if not text:
            raise ProfileSubjectInvalid(f"subject attribute {key!r} is empty")
        bound = _UPPER_BOUNDS.get(name, _UB_NAME)
        if len(text) > bound:
            raise SubjectAttributeTooLong(
                f"subject attribute {key!r} has {len(text)} characters; RFC 5280 allows {bound}"
            )
        result[name] = text
    return result


def build_name(subject: Mapping[str, str]) -> x509.Name:
    """A Name with DirectoryString values as UTF8String (Chinese survives), country as
    PrintableString and email as IA5String, as RFC 5280 requires."""
    values = normalise_subject(subject)
    country = values.get("country_name")
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        raise ProfileSubjectInvalid("country_name must be two capital letters (ISO 3166)")
    try:
        name = x509.Name.build(values)
        # RFC 4518 string preparation (what path validation compares names with) refuses
        # unassigned code points; a certificate holding one could never chain.
        name.hashable  # noqa: B018
    except ValueError as exc:
        raise ProfileSubjectInvalid(f"subject cannot be encoded: {exc}") from None
    return name


def name_attributes(name: x509.Name) -> dict[str, str]:
    """A Name's single-valued attributes by asn1crypto name (the last one wins)."""
    result: dict[str, str] = {}
    for rdn in name.chosen:
        for atv in rdn:
            result[atv["type"].native] = str(atv["value"].native)
    return result


def name_text(name: x509.Name) -> str:
    """``C=CN, O=..., CN=...`` in certificate order, for listing and searching."""
    parts = []
    for rdn in name.chosen:
        for atv in rdn:
            kind = atv["type"].native
            parts.append(f"{_SHORT.get(kind, kind)}={atv['value'].native}")
    return ", ".join(parts)


# --- subject alternative names ---------------------------------------------------


@dataclass(frozen=True)
class AltName:
    kind: str  # "dns" | "ip" | "email"
    value: str


_DNS = re.compile(
    r"(?=.{1,253}$)(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_UB_EMAIL = 255  # RFC 5280 ub-emailaddress-length


def parse_alt_name(text: str) -> AltName:
    """``dns:host``, ``ip:addr`` or ``email:a@b``. The kind prefix is required: guessing it
    from the value made ``alice`` a DNS name and any typo a certificate the holder never
    asked for."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("dns", "ip", "email"):
        raise ProfileSanInvalid(
            "a subject alternative name must start with its kind: dns:, ip: or email:"
        )
    value = value.strip()
    if kind == "ip":
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError:
            raise ProfileSanInvalid(f"{value!r} is not an IP address") from None
    elif kind == "email" and (len(value) > _UB_EMAIL or not _EMAIL.fullmatch(value)):
        raise ProfileSanInvalid(f"{value!r} is not an email address")
    elif kind == "dns":
        try:
            value = value.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ProfileSanInvalid(f"{text!r} is not a DNS name") from None
        if not _DNS.fullmatch(value):
            raise ProfileSanInvalid(f"{text!r} is not a DNS name")
    return AltName(kind, value)


def general_names(names: Iterable[AltName]) -> x509.GeneralNames:
    choice = {"dns": "dns_name", "ip": "ip_address", "email": "rfc822_name"}
    return x509.GeneralNames([x509.GeneralName(name=choice[n.kind], value=n.value) for n in names])


def alt_names_of(extensions: Iterable[Any]) -> list[AltName]:
    """The DNS, IP and email names of a subjectAltName among ``extensions``."""
    kinds = {"dns_name": "dns", "ip_address": "ip", "rfc822_name": "email"}
    result = []
    for ext in extensions:
        if ext["extn_id"].native != "subject_alt_name":
            continue
        for gn in ext["extn_value"].parsed:
            if gn.name not in kinds:
                raise ProfileSanInvalid(f"subject alternative name of type {gn.name} not supported")
            result.append(AltName(kinds[gn.name], str(gn.native)))
    return result


# --- keys and identifiers --------------------------------------------------------


def public_key_info(spki_der: bytes) -> tuple[PublicKey, asn1_keys.PublicKeyInfo]:
    """The key and the SPKI as this service writes it (SM2 as id-ecPublicKey + SM2 curve,
    whatever form it came in)."""
    public = load_public_key(spki_der)
    return public, asn1_keys.PublicKeyInfo.load(public.public_bytes_spki())


def key_identifier(info: asn1_keys.PublicKeyInfo) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (what OpenSSL writes)."""
    ident: bytes = info.sha1
    return ident


# --- signing and verifying ---------------------------------------------------------


def sign_certificate(tbs: x509.TbsCertificate, signer: CaKeySigner) -> x509.Certificate:
    algorithm = signature_algorithm(signer.algorithm)
    tbs["signature"] = algorithm
    signature = signer.sign(tbs.dump(force=True))
    return x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from DER or PEM ("CERTIFICATE"), strictly parsed."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise MalformedASN1(f"expected one certificate, found {len(certs)}")
    return certs[0]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    if not is_pem(data):
        return [load_der(x509.Certificate, data, "certificate")]
    return [
        load_der(x509.Certificate, der, "certificate")
        for kind, der in pem_blocks(data)
        if kind == "CERTIFICATE"
    ]


def certificate_pem(cert: x509.Certificate | bytes) -> str:
    der = cert if isinstance(cert, bytes) else cert.dump()
    return to_pem("CERTIFICATE", der).decode("ascii")


def certs_only(certificates: Sequence[bytes]) -> bytes:
    """A "certs-only" CMS message (RFC 8551 §3.2.2: SignedData with no content and no
    signers) holding ``certificates`` (DER): what RFC 5280 §4.2.2.1 allows an AIA
    caIssuers URL to serve instead of one certificate."""
    return cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": {
                "version": "v1",
                "digest_algorithms": [],
                "encap_content_info": {"content_type": "data"},
                "certificates": [x509.Certificate.load(c) for c in certificates],
                "signer_infos": [],
            },
        }
    ).dump()


def verify_certificate(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise ``InvalidSignature`` unless ``issuer`` names and signed ``cert``.

    SM2 signatures are checked with Z over the issuer's key and the default ID
    (GM/T 0015), so certificates signed without Z (Tongsuo's ``sm2-noza``) fail.
    Validity periods are not checked: that is path validation's job.
    """
    if cert.issuer != issuer.subject:
        raise InvalidSignature("issuer name does not match the issuing certificate")
    tbs = cert["tbs_certificate"]
    if tbs["signature"].dump() != cert["signature_algorithm"].dump():
        raise InvalidSignature("signature algorithm differs inside and outside the certificate")
    public = load_public_key(issuer.public_key.dump())
    verify_signature(
        public, cert["signature_algorithm"], tbs.dump(), cert["signature_value"].native
    )


# --- PKCS#10 -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedRequest:
    subject: dict[str, str]
    spki_der: bytes  # as this service writes it
    alt_names: tuple[AltName, ...]
    public_key: PublicKey


def load_csr(data: bytes) -> asn1_csr.CertificationRequest:
    der = data
    if is_pem(data):
        blocks = [
            d
            for k, d in pem_blocks(data)
            if k in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
        ]
        if len(blocks) != 1:
            raise MalformedASN1("expected one PEM CERTIFICATE REQUEST block")
        der = blocks[0]
    return load_der(asn1_csr.CertificationRequest, der, "certificate request")


def parse_csr(data: bytes) -> ParsedRequest:
    """Subject, key and requested SANs of a PKCS#10 request, after checking its proof of
    possession: the signature over certificationRequestInfo under the enclosed key (SM2
    with the default ID, ECDSA, RSA PKCS#1 v1.5). ``CsrSignatureInvalid`` if it fails."""
    request = load_csr(data)
    info = request["certification_request_info"]
    public, spki = public_key_info(info["subject_pk_info"].dump())
    try:
        verify_signature(
            public, request["signature_algorithm"], info.dump(), request["signature"].native
        )
    except InvalidSignature:
        raise CsrSignatureInvalid() from None
    alt_names: list[AltName] = []
    for attribute in info["attributes"]:
        if attribute["type"].native == "extension_request":
            for extensions in attribute["values"]:
                alt_names.extend(alt_names_of(extensions))
    return ParsedRequest(name_attributes(info["subject"]), spki.dump(), tuple(alt_names), public)


def chain_pem(certificates: Sequence[bytes]) -> str:
    return "".join(certificate_pem(c) for c in certificates)
