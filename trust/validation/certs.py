"""Parsing certificates, CRLs and OCSP responses for validation, with trust errors only.

Certificates are parsed fully up front (asn1crypto parses lazily, and a late failure deep
inside certvalidator would surface as an arbitrary exception), but their bytes are kept
as received: a signature covers the encoding that was signed, canonical or not.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TypeAlias, TypeVar

from asn1crypto import cms, core, crl, ocsp, x509

import trust.oids  # noqa: F401  (registers the GM OIDs certificates use)
from trust.cms.asn1 import encoding, shared_certificate
from trust.errors import MalformedASN1, MalformedEncoding
from trust.keys.base import is_pem, pem_blocks
from trust.validation.report import CertificateInfo

CertificateInput: TypeAlias = bytes | x509.Certificate
CrlInput: TypeAlias = bytes | crl.CertificateList
OcspInput: TypeAlias = bytes | ocsp.OCSPResponse

_V = TypeVar("_V", bound=core.Asn1Value)


def _parse(spec: type[_V], der: bytes, what: str) -> _V:
    try:
        value = spec.load(der, strict=True)
        _ = value.native  # parse every nested field now
    # asn1crypto reports bad input with assorted built-in exceptions: all mean "not DER".
    except Exception:
        raise MalformedASN1(f"{what} is not valid DER") from None
    return value


def _der_blocks(data: bytes, kinds: tuple[str, ...], what: str) -> list[tuple[str, bytes]]:
    if not is_pem(data):
        return [("", data)]
    blocks = pem_blocks(data)
    for kind, _ in blocks:
        if kind not in kinds:
            raise MalformedEncoding(f"PEM block {kind!r} is not a {what}")
    return blocks


@functools.lru_cache(maxsize=1024)
def _certificate(der: bytes) -> x509.Certificate:
    # A validation parses the same anchors and intermediates several times (request,
    # CMS, path, timestamp); fully parsing one costs ~1 ms. Parsed certificates are only
    # read afterwards, so one object per DER can be shared.
    try:
        return shared_certificate(der)  # the CMS layer's object for the same DER
    except MalformedASN1:
        raise MalformedASN1("certificate is not valid DER") from None


def load_certificate(data: CertificateInput) -> x509.Certificate:
    """One certificate, DER or PEM, or an already parsed one."""
    if isinstance(data, x509.Certificate):
        return _certificate(encoding(data))
    blocks = _der_blocks(data, ("CERTIFICATE",), "certificate")
    if len(blocks) != 1:
        raise MalformedEncoding(f"expected one certificate, found {len(blocks)} PEM blocks")
    return _certificate(blocks[0][1])


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """A bundle: PEM certificates and/or PKCS#7 blocks, or one DER certificate or PKCS#7."""
    certs: list[x509.Certificate] = []
    for kind, der in _der_blocks(data, ("CERTIFICATE", "PKCS7"), "certificate bundle"):
        if kind == "CERTIFICATE":
            certs.append(_certificate(der))
        elif kind == "PKCS7":
            certs.extend(_pkcs7_certificates(der))
        else:  # DER: one certificate, or a certs-only PKCS#7
            try:
                certs.append(_parse(x509.Certificate, der, "certificate"))
            except MalformedASN1:
                certs.extend(_pkcs7_certificates(der))
    return certs


def _pkcs7_certificates(der: bytes) -> list[x509.Certificate]:
    info = _parse(cms.ContentInfo, der, "PKCS#7")
    if info["content_type"].native not in ("signed_data", "sm2_signed_data"):
        raise MalformedASN1("PKCS#7 is not SignedData")
    found = []
    for choice in info["content"]["certificates"] or ():
        if choice.name != "certificate":
            raise MalformedASN1("PKCS#7 holds an attribute or other certificate")
        found.append(_parse(x509.Certificate, choice.chosen.dump(), "certificate"))
    return found


def load_crl(data: CrlInput) -> crl.CertificateList:
    if isinstance(data, crl.CertificateList):
        data = data.dump()
    blocks = _der_blocks(data, ("X509 CRL",), "CRL")
    if len(blocks) != 1:
        raise MalformedEncoding(f"expected one CRL, found {len(blocks)} PEM blocks")
    return _parse(crl.CertificateList, blocks[0][1], "CRL")


def load_ocsp_response(data: OcspInput) -> ocsp.OCSPResponse:
    der = data.dump() if isinstance(data, ocsp.OCSPResponse) else data
    return _parse(ocsp.OCSPResponse, der, "OCSP response")


def name_text(name: x509.Name) -> str:
    """A distinguished name as RFC 4514 text, most significant RDN last."""
    parts = []
    for rdn in reversed(name.chosen):
        parts.append(
            "+".join(f"{_attribute_label(atv)}={_escape(atv['value'].native)}" for atv in rdn)
        )
    return ",".join(parts)


_LABELS = {
    "common_name": "CN",
    "country_name": "C",
    "state_or_province_name": "ST",
    "locality_name": "L",
    "organization_name": "O",
    "organizational_unit_name": "OU",
    "street_address": "STREET",
    "domain_component": "DC",
    "email_address": "emailAddress",
    "serial_number": "serialNumber",
}


def _attribute_label(atv: x509.NameTypeAndValue) -> str:
    name: str = atv["type"].native
    return _LABELS.get(name, atv["type"].dotted if name == atv["type"].dotted else name)


def _escape(value: object) -> str:
    text = str(value)
    for ch in '\\,+"<>;=':
        text = text.replace(ch, "\\" + ch)
    return text


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def certificate_info(cert: x509.Certificate, *, trust_anchor: bool = False) -> CertificateInfo:
    return _certificate_info(encoding(cert), trust_anchor)


@functools.lru_cache(maxsize=1024)
def _certificate_info(der: bytes, trust_anchor: bool) -> CertificateInfo:
    # Several per report (signer, chain, evidence): names as text are slow to build.
    cert = _certificate(der)
    validity = cert["tbs_certificate"]["validity"]
    return CertificateInfo(
        subject=name_text(cert.subject),
        issuer=name_text(cert.issuer),
        serial=serial_hex(cert.serial_number),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
        sha256_fingerprint=hashlib.sha256(cert.dump()).hexdigest(),
        trust_anchor=trust_anchor,
    )
