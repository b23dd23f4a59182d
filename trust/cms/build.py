"""Building CMS SignedData (RFC 5652; GM/T 0010 with the ``GMT0010`` profile).

One signer per call, always with signed attributes: contentType, messageDigest,
signingCertificateV2 (RFC 5035, hashed with the signer's digest) and, when asked,
signingTime. The signature then covers the DER SET OF those attributes, never
the raw content, which is what every verifier we interoperate with expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

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
from trust.keys import KeyAlgorithm

# Attributes this module writes itself; callers may not add a second copy.
_OWN_ATTRIBUTES = frozenset({"content_type", "message_digest", "signing_time"})
_ESS_ATTRIBUTES = frozenset({"signing_certificate", "signing_certificate_v2"})
# RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime outside.
_UTC_TIME_YEARS = range(1950, 2050)


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


def _signing_time(when: datetime) -> bytes:
    """DER Time: UTCTime (tag 23) for 1950-2049, else GeneralizedTime (24), whole
    seconds, Z. Encoded here: asn1crypto's Time costs a tenth of a signature."""
    when = when.astimezone(UTC)
    if when.year in _UTC_TIME_YEARS:
        return bytes(parser.emit(0, 0, 23, when.strftime("%y%m%d%H%M%SZ").encode()))
    return bytes(parser.emit(0, 0, 24, f"{when.year:04d}{when:%m%d%H%M%S}Z".encode()))


def _check_extra(attributes: Sequence[cms.CMSAttribute]) -> None:
    seen = set(_OWN_ATTRIBUTES | _ESS_ATTRIBUTES)
    for attribute in attributes:
        kind = attribute["type"].native
        if kind in seen:
            raise BadRequest(f"signed attribute {kind} given twice")
        seen.add(kind)


class SignedDataTemplate:
    """What stays the same for one signer and one set of options, encoded once.

    A SignedData is then ``signed_attributes`` (the DER SET the signature covers), a
    signature over it by whoever holds the key, and ``assemble``: a digest, one signature
    and byte concatenation per content, so a signing service can sign many contents
    with one ``KeyStore.sign_many`` call. ``build_signed_data`` is one use of it.
    """

    def __init__(
        self,
        certificate: x509.Certificate,
        algorithm: KeyAlgorithm,
        *,
        profile: CmsProfile = RFC5652,
        content_type: str | None = None,
        detached: bool = False,
        include_certificates: bool = True,
        extra_certificates: Sequence[x509.Certificate] = (),
        extra_signed_attributes: Sequence[cms.CMSAttribute] = (),
    ) -> None:
        _check_extra(extra_signed_attributes)
        self._e_content_type = content_type or profile.data_type
        self._detached = detached
        self.digest_name = signer_digest(algorithm)
        cert_der = certificate.dump()
        certificate = x509.Certificate.load(cert_der)
        ess = tsp.SigningCertificateV2({"certs": [ess_cert_id_v2(certificate, self.digest_name)]})
        self._fixed_attributes = [
            _attribute("content_type", cms.ContentType(self._e_content_type)).dump(),
            _attribute("signing_certificate_v2", ess).dump(),
            *(a.dump() for a in extra_signed_attributes),
        ]
        self._message_digest_type = cms.CMSAttributeType("message_digest").dump()
        self._signing_time_type = cms.CMSAttributeType("signing_time").dump()

        sig_oid, null_params = signature_algorithm(algorithm, profile)
        sig_alg: dict[str, object] = {"algorithm": sig_oid}
        if null_params:
            sig_alg["parameters"] = core.Null()
        digest_algorithm = _digest_algorithm(self.digest_name).dump()
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": certificate.issuer, "serial_number": certificate.serial_number},
        )
        # SignerInfo fields before and after signedAttrs (version v1, sid, digestAlgorithm;
        # signatureAlgorithm), as asn1crypto's SignerInfo would encode them.
        self._info_head = core.Integer(1).dump() + sid.dump() + digest_algorithm
        self._info_algorithm = algos.SignedDigestAlgorithm(sig_alg).dump()

        # RFC 5652 §5.1: v3 when eContentType is not id-data; GM/T 0010 data is v1 too.
        version = 1 if self._e_content_type in DATA_TYPES else 3
        self._body_head = core.Integer(version).dump() + _set(digest_algorithm)
        self._detached_encapsulated = _encapsulated(self._e_content_type, None)
        self._certificates = b""
        if include_certificates:
            certs = {cert_der, *(c.dump() for c in extra_certificates)}
            # [0] IMPLICIT SET OF, DER order
            self._certificates = parser.emit(2, 1, 0, b"".join(sorted(certs)))
        self._outer_type = cms.ContentType(profile.signed_data_type).dump()

    def signed_attributes(self, content: bytes, signing_time: datetime | None = None) -> bytes:
        """The DER SET OF signed attributes for ``content``: the bytes to sign."""
        message_digest = bytes(parser.emit(0, 0, 4, digest(self.digest_name, content)))
        attributes = [
            *self._fixed_attributes,
            _sequence(self._message_digest_type + _set(message_digest)),
        ]
        if signing_time is not None:
            time = _signing_time(signing_time)
            attributes.append(_sequence(self._signing_time_type + _set(time)))
        return _set(b"".join(sorted(attributes)))  # DER SET OF: ascending encodings

    def assemble(
        self,
        content: bytes,
        signed_attributes: bytes,
        signature: bytes,
        unsigned_attributes: Sequence[cms.CMSAttribute] = (),
    ) -> bytes:
        """DER ContentInfo of the SignedData whose one SignerInfo carries ``signature``
        over ``signed_attributes`` (from ``signed_attributes(content, ...)``)."""
        info = (
            self._info_head
            + b"\xa0"  # signedAttrs [0] IMPLICIT: the SET with its tag replaced
            + signed_attributes[1:]
            + self._info_algorithm
            + core.OctetString(signature).dump()
        )
        if unsigned_attributes:
            info += parser.emit(2, 1, 1, b"".join(sorted(a.dump() for a in unsigned_attributes)))
        body = self._body_head
        if self._detached:
            body += self._detached_encapsulated
        else:
            body += _encapsulated(self._e_content_type, content)
        body += self._certificates + _set(_sequence(info))
        explicit = parser.emit(2, 1, 0, _sequence(body))  # [0] EXPLICIT
        return _sequence(self._outer_type + explicit)


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
    # The SignedData is assembled from DER parts: asn1crypto re-encodes nested values
    # at every enclosing level, and sometimes a whole certificate that way, which cost
    # up to 80 ms per token; the parts are each encoded once.
    template = SignedDataTemplate(
        signer.certificate,
        signer.algorithm,
        profile=profile,
        content_type=content_type,
        detached=detached,
        include_certificates=include_certificates,
        extra_certificates=extra_certificates,
        extra_signed_attributes=extra_signed_attributes,
    )
    signed = template.signed_attributes(content, signing_time)
    return template.assemble(content, signed, signer.sign(signed), unsigned_attributes)


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
