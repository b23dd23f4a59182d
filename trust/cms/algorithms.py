"""The algorithm choices of CMS SignedData: digests, signature OIDs and the OID profile.

What we write is fixed per key type (the hash each key signs with in ``trust.keys``);
what we accept on input is wider and listed in ``trust.cms.verify``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from trust import oids
from trust.errors import UnsupportedAlgorithm
from trust.keys import KeyAlgorithm

PKCS7_DATA = "1.2.840.113549.1.7.1"
PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
SHA512 = "2.16.840.1.101.3.4.2.3"

# asn1crypto digest names -> pyca hash classes; SHA-1 and MD5 are deliberately absent.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sm3": hashes.SM3,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
DIGEST_OIDS: dict[str, str] = {
    "sm3": oids.SM3,
    "sha256": oids.SHA256,
    "sha384": oids.SHA384,
    "sha512": SHA512,
}


def hash_class(name: str) -> type[hashes.HashAlgorithm]:
    try:
        return _HASHES[name]
    except KeyError:
        raise UnsupportedAlgorithm(f"digest algorithm {name} is not supported") from None


def digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(hash_class(name)())
    h.update(data)
    return h.finalize()


def digest_size(name: str) -> int:
    return hash_class(name)().digest_size


def signer_digest(algorithm: KeyAlgorithm) -> str:
    """The digest a key of ``algorithm`` signs with (see ``trust.keys``), hence the
    SignerInfo digestAlgorithm and the ESSCertIDv2 hash we write for it."""
    if algorithm is KeyAlgorithm.SM2:
        return "sm3"
    if algorithm is KeyAlgorithm.ECDSA_P384:
        return "sha384"
    return "sha256"


@dataclass(frozen=True)
class CmsProfile:
    """The OIDs that differ between RFC 5652 and GM/T 0010 (GB/T 35275) SignedData."""

    name: str
    signed_data_type: str  # ContentInfo.contentType
    data_type: str  # eContentType of plain data
    sm2_signature: str  # SignerInfo.signatureAlgorithm of an SM2 signer


# RFC 5652 OIDs; an SM2 signature is named SM3withSM2 (.501), as GmSSL and OpenSSL write it.
RFC5652 = CmsProfile("rfc5652", PKCS7_SIGNED_DATA, PKCS7_DATA, oids.SM3_WITH_SM2)
# GM/T 0010 content types; SM2-1 (.301.1), as CFCA SADK, gmsm and ofdrw write it.
GMT0010 = CmsProfile("gmt0010", oids.GM_CMS_SIGNED_DATA, oids.GM_CMS_DATA, oids.SM2_SIGN)

DATA_TYPES = frozenset({PKCS7_DATA, oids.GM_CMS_DATA})


def signature_algorithm(algorithm: KeyAlgorithm, profile: CmsProfile) -> tuple[str, bool]:
    """(SignerInfo.signatureAlgorithm OID, whether it carries NULL parameters)."""
    if algorithm is KeyAlgorithm.SM2:
        return profile.sm2_signature, False
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return oids.ECDSA_WITH_SHA256, False
    if algorithm is KeyAlgorithm.ECDSA_P384:
        return oids.ECDSA_WITH_SHA384, False
    # RFC 4055: the PKCS#1 v1.5 identifiers take NULL parameters.
    return oids.SHA256_WITH_RSA, True
