"""Building CMS SignedData (RFC 5652; GM/T 0010 with the ``GMT0010`` profile).

One signer per call, always with signed attributes: contentType, messageDigest,
signingCertificateV2 (RFC 5035, hashed with the signer's digest) and, when asked,
signingTime. The signature then covers the DER SET OF those attributes, never
the raw content, which is what every verifier we interoperate with expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from asn1crypto import algos, cms, core, parser, tsp, x509

from trust.cms.algorithms import (
    DATA_TYPES,
    RFC5652,
    CmsProfile,
    digest,
    signature_algorithm,
    signer_digest,
)
from trust.cms.signer import CmsSigner
from trust.cms.verify import load_content_info
from trust.errors import BadRequest

# Attributes this module writes itself; callers may not add a second copy.
_OWN_ATTRIBUTES = frozenset({"content_type", "message_digest", "signing_time"})
_ESS_ATTRIBUTES = frozenset({"signing_certificate", "signing_certificate_v2"})
# RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime outside.
_UTC_TIME_YEARS = range(1950, 2050)


_A = TypeVar("_A", bound=core.Asn1Value)


def _settled(value: _A) -> _A:
    """``value`` re-parsed from its DER. asn1crypto re-encodes a structure built from
    values at every dump of every enclosing level, so nesting built values costs
    quadratic time (10 ms for one ESS attribute); a parsed value dumps its bytes."""
    return value.load(value.dump())


def _digest_algorithm(name: str) -> algos.DigestAlgorithm:
    # Parameters absent (RFC 5754); GM/T 0010 verifiers accept that too (ofdrw, GmSSL write it).
    return algos.DigestAlgorithm({"algorithm": name})


def ess_cert_id_v2(certificate: x509.Certificate, digest_name: str) -> tsp.ESSCertIDv2:
    """ESSCertIDv2 for ``certificate``; the SHA-256 hashAlgorithm is the DEFAULT and so
    left out of the DER by asn1crypto, as RFC 5035 requires."""
    return tsp.ESSCertIDv2(
        {
            "hash_algorithm": _digest_algorithm(digest_name),
            "cert_hash": digest(digest_name, certificate.dump()),
            "issuer_serial": {
                "issuer": [x509.GeneralName(name="directory_name", value=certificate.issuer)],
                "serial_number": certificate.serial_number,
            },
        }
    )


def _attribute(kind: str, value: core.Asn1Value) -> cms.CMSAttribute:
    """SEQUENCE { type, SET { value } } assembled as DER and loaded lazily: a value with
    a DEFAULT field left out (ESSCertIDv2 with SHA-256) would otherwise be re-encoded
    at every enclosing level, quadratic in the depth."""
    return cms.CMSAttribute.load(_sequence(cms.CMSAttributeType(kind).dump() + _set(value.dump())))


def _signing_time(when: datetime) -> cms.Time:
    when = when.astimezone(UTC).replace(microsecond=0)
    if when.year in _UTC_TIME_YEARS:
        return cms.Time(name="utc_time", value=when)
    return cms.Time(name="generalized_time", value=when)


def _check_extra(attributes: Sequence[cms.CMSAttribute]) -> None:
    seen = set(_OWN_ATTRIBUTES | _ESS_ATTRIBUTES)
    for attribute in attributes:
        kind = attribute["type"].native
        if kind in seen:
            raise BadRequest(f"signed attribute {kind} given twice")
        seen.add(kind)


def build_signed_data(
    content: bytes,
    signer: CmsSigner,
    *,
    profile: CmsProfile = RFC5652,
    content_type: str | None = None,
    detached: bool = False,
    signing_time: datetime | None = None,
    include_certificates: bool = True,
    extra_certificates: Sequence[x509.Certificate] = (),
    extra_signed_attributes: Sequence[cms.CMSAttribute] = (),
    unsigned_attributes: Sequence[cms.CMSAttribute] = (),
) -> bytes:
    """DER ContentInfo holding a SignedData over ``content`` by ``signer``.

    ``content_type`` is the eContentType (dotted OID), by default the profile's data
    type; ``include_certificates`` puts the signer certificate and
    ``extra_certificates`` (its chain) in the SignedData.
    """
    _check_extra(extra_signed_attributes)
    e_content_type = content_type or profile.data_type
    digest_name = signer_digest(signer.algorithm)
    cert_der = signer.certificate.dump()
    certificate = x509.Certificate.load(cert_der)

    attributes = [
        _attribute("content_type", cms.ContentType(e_content_type)),
        _attribute("message_digest", core.OctetString(digest(digest_name, content))),
    ]
    if signing_time is not None:
        attributes.append(_attribute("signing_time", _signing_time(signing_time)))
    attributes.append(
        _attribute(
            "signing_certificate_v2",
            tsp.SigningCertificateV2({"certs": [ess_cert_id_v2(certificate, digest_name)]}),
        )
    )
    attributes.extend(extra_signed_attributes)
    signed_attrs = _settled(cms.CMSAttributes(attributes))
    # asn1crypto sorts the SET OF on dump: these are the DER bytes the signature covers.
    signature = signer.sign(signed_attrs.dump())

    sig_oid, null_params = signature_algorithm(signer.algorithm, profile)
    sig_alg: dict[str, object] = {"algorithm": sig_oid}
    if null_params:
        sig_alg["parameters"] = core.Null()
    signer_info: dict[str, object] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": certificate.issuer, "serial_number": certificate.serial_number},
        ),
        "digest_algorithm": _digest_algorithm(digest_name),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm(sig_alg),
        "signature": signature,
    }
    if unsigned_attributes:
        signer_info["unsigned_attrs"] = cms.CMSAttributes(list(unsigned_attributes))

    # The SignedData and ContentInfo are assembled from DER parts: asn1crypto re-encodes
    # nested values at every enclosing level, and sometimes a whole certificate that way,
    # which cost up to 80 ms per token; the parts below are each encoded once.
    # RFC 5652 §5.1: v3 when eContentType is not id-data; GM/T 0010 data is v1 too.
    body = core.Integer(1 if e_content_type in DATA_TYPES else 3).dump()
    body += _set(_digest_algorithm(digest_name).dump())
    body += _encapsulated(e_content_type, None if detached else content)
    if include_certificates:
        certs = {cert_der, *(c.dump() for c in extra_certificates)}
        body += parser.emit(2, 1, 0, b"".join(sorted(certs)))  # [0] IMPLICIT SET OF, DER order
    body += _set(cms.SignerInfo(signer_info).dump())
    explicit = parser.emit(2, 1, 0, _sequence(body))  # [0] EXPLICIT
    return _sequence(cms.ContentType(profile.signed_data_type).dump() + explicit)


def _sequence(body: bytes) -> bytes:
    return bytes(parser.emit(0, 1, 16, body))


def _set(body: bytes) -> bytes:
    return bytes(parser.emit(0, 1, 17, body))


def _encapsulated(content_type: str, content: bytes | None) -> bytes:
    """EncapsulatedContentInfo DER; eContent is an OCTET STRING in every version."""
    body = cms.ContentType(content_type).dump()
    if content is not None:
        body += parser.emit(2, 1, 0, core.OctetString(content).dump())  # [0] EXPLICIT
    return _sequence(body)


def timestamp_token_attribute(token: bytes) -> cms.CMSAttribute:
    """The id-aa-timeStampToken unsigned attribute carrying a DER timestamp token."""
    return _attribute("signature_time_stamp_token", load_content_info(token))


def add_unsigned_attributes(
    signed_data: bytes, attributes: Sequence[cms.CMSAttribute], *, signer_index: int = 0
) -> bytes:
    """``signed_data`` (DER ContentInfo) with ``attributes`` appended to one signer's
    unsigned attributes, e.g. a timestamp token over its signature value. Everything
    signed keeps its original bytes."""
    info = load_content_info(signed_data)
    infos = info["content"]["signer_infos"]
    if not 0 <= signer_index < len(infos):
        raise BadRequest(f"no signer {signer_index}")
    signer = infos[signer_index]
    current = signer["unsigned_attrs"]
    existing = [] if isinstance(current, core.Void) else list(current)
    signer["unsigned_attrs"] = cms.CMSAttributes([*existing, *attributes])
    # Rebuild the parents: asn1crypto caches their encodings, the changed child is new.
    infos[signer_index] = signer
    content = info["content"]
    content["signer_infos"] = infos
    return cms.ContentInfo({"content_type": info["content_type"], "content": content}).dump()
