"""pyHanko's ``Signer`` and ``TimeStamper`` over this service's signing and TSA interfaces.

``CmsPdfSigner`` lets pyHanko assemble the CMS (PAdES attributes, certificates, unsigned
timestamp) and hands only the raw signature to a ``trust.cms.CmsSigner``, e.g. a
``KeystoreCmsSigner``, so the private key never leaves the key store. It covers ECDSA and
RSA; SM2 goes through ``pdf_gm`` because pyHanko cannot build GM/T 0010 SignedData.

``CallableTimeStamper`` obtains tokens from an in-process callable
``(hash_algorithm, digest) -> token DER`` (the service's TSA) instead of HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from asn1crypto import algos, cms, core, x509
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from trust.cms import RFC5652, CmsSigner
from trust.cms.algorithms import signature_algorithm, signer_digest
from trust.errors import UnsupportedAlgorithm
from trust.keys import KeyAlgorithm

# (hash algorithm name as asn1crypto spells it, digest) -> DER TimeStampToken (ContentInfo)
TimestampFunction = Callable[[str, bytes], bytes]

# DER ECDSA-Sig-Value upper bound: SEQUENCE header plus two INTEGERs with a sign byte each.
_ECDSA_DER_OVERHEAD = 9
# SignedData beyond certificates and signature value (attributes, SignerInfo, headers), and
# room for a timestamp token with its TSA certificates.
_CMS_OVERHEAD = 2048
_TOKEN_ALLOWANCE = 8192


class CmsPdfSigner(Signer):
    """A pyHanko ``Signer`` whose raw signatures come from ``cms_signer``."""

    def __init__(self, cms_signer: CmsSigner, chain: Sequence[x509.Certificate] = ()) -> None:
        algorithm = cms_signer.algorithm
        if algorithm is KeyAlgorithm.SM2:
            raise UnsupportedAlgorithm("SM2 PDF signatures are built as GM/T 0010 SignedData")
        certificate = cms_signer.certificate
        oid, null_parameters = signature_algorithm(algorithm, RFC5652)
        mechanism: dict[str, object] = {"algorithm": oid}
        if null_parameters:
            mechanism["parameters"] = core.Null()
        super().__init__(
            signing_cert=certificate,
            cert_registry=SimpleCertificateStore.from_certs([certificate, *chain]),
            signature_mechanism=algos.SignedDigestAlgorithm(mechanism),
        )
        self._cms_signer = cms_signer
        self._digest = signer_digest(algorithm)
        self._placeholder = _signature_size_bound(certificate)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm != self._digest:
            raise UnsupportedAlgorithm(
                f"this key signs with {self._digest}, not {digest_algorithm}"
            )
        if dry_run:
            # Size estimate only: pyHanko reserves /Contents from the dry-run CMS.
            return bytes(self._placeholder)
        return self._cms_signer.sign(data)


def cms_room(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], *, timestamped: bool
) -> int:
    """/Contents bytes to reserve for one signer's CMS: reserving up front spares pyHanko
    a dry-run CMS build (asn1crypto makes each build cost tens of milliseconds)."""
    room = _CMS_OVERHEAD + _signature_size_bound(certificate)
    room += len(certificate.dump()) + sum(len(c.dump()) for c in chain)
    return room + (_TOKEN_ALLOWANCE if timestamped else 0)


def _signature_size_bound(certificate: x509.Certificate) -> int:
    key = certificate.public_key
    bits: int = key.bit_size
    if key.algorithm == "rsa":
        return (bits + 7) // 8
    return 2 * ((bits + 7) // 8) + _ECDSA_DER_OVERHEAD


class CallableTimeStamper(TimeStamper):
    """A pyHanko ``TimeStamper`` that asks ``issue`` (the service's TSA) for each token.

    Where pyHanko sizes a container itself (document timestamps) it first asks once per
    hash algorithm with a dummy digest; that is a real token from ``issue`` too."""

    def __init__(self, issue: TimestampFunction) -> None:
        super().__init__(include_nonce=False)
        self._issue = issue

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        return cms.ContentInfo.load(self._issue(md_algorithm, message_digest))
