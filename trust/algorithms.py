"""The catalogue of algorithms the service offers, as reported by ``GET /v1/algorithms``.

Every entry names something ``trust.keys`` / ``trust.sm3`` / ``trust.sm4``
actually implements (``tests/test_algorithms_api.py`` exercises each one), with
the OID that identifies it in certificates, CMS and seals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trust import oids
from trust.keys import KeyAlgorithm, SignatureScheme
from trust.sm2.backend import SM2Backend

_RSA = (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096)


@dataclass(frozen=True)
class SignatureAlgorithm:
    name: str
    oid: str
    key_algorithms: tuple[KeyAlgorithm, ...]
    hash: str
    scheme: SignatureScheme | None = None  # the ``scheme=`` argument of sign/verify


@dataclass(frozen=True)
class EncryptionAlgorithm:
    name: str
    oid: str
    key_algorithms: tuple[KeyAlgorithm, ...]


@dataclass(frozen=True)
class HashAlgorithm:
    name: str
    oid: str
    digest_size: int


@dataclass(frozen=True)
class CipherAlgorithm:
    name: str
    oid: str | None  # SM4-CTR has no registered OID
    key_size: int
    iv_size: int  # the IV, initial counter block or nonce, in bytes; 0 for ECB
    authenticated: bool
    note: str = ""


@dataclass(frozen=True)
class Catalogue:
    key_algorithms: tuple[KeyAlgorithm, ...]
    signature_algorithms: tuple[SignatureAlgorithm, ...]
    encryption_algorithms: tuple[EncryptionAlgorithm, ...]
    hash_algorithms: tuple[HashAlgorithm, ...]
    mac_algorithms: tuple[HashAlgorithm, ...]
    cipher_algorithms: tuple[CipherAlgorithm, ...]
    sm2_backend: str
    sm2_backends_available: tuple[str, ...]


SIGNATURE_ALGORITHMS = (
    SignatureAlgorithm("sm2-with-sm3", oids.SM3_WITH_SM2, (KeyAlgorithm.SM2,), "sm3"),
    SignatureAlgorithm(
        "ecdsa-with-sha256", oids.ECDSA_WITH_SHA256, (KeyAlgorithm.ECDSA_P256,), "sha256"
    ),
    SignatureAlgorithm(
        "ecdsa-with-sha384", oids.ECDSA_WITH_SHA384, (KeyAlgorithm.ECDSA_P384,), "sha384"
    ),
    SignatureAlgorithm(
        "sha256-with-rsa", oids.SHA256_WITH_RSA, _RSA, "sha256", SignatureScheme.RSA_PKCS1V15
    ),
    SignatureAlgorithm("rsassa-pss", oids.RSASSA_PSS, _RSA, "sha256", SignatureScheme.RSA_PSS),
)

ENCRYPTION_ALGORITHMS = (
    EncryptionAlgorithm("sm2-encrypt", oids.SM2_ENCRYPT, (KeyAlgorithm.SM2,)),
    EncryptionAlgorithm("rsaes-oaep-sha256", oids.RSAES_OAEP, _RSA),
)

HASH_ALGORITHMS = (
    HashAlgorithm("sm3", oids.SM3, 32),
    HashAlgorithm("sha256", oids.SHA256, 32),
    HashAlgorithm("sha384", oids.SHA384, 48),
)

MAC_ALGORITHMS = (HashAlgorithm("hmac-sm3", oids.HMAC_SM3, 32),)

CIPHER_ALGORITHMS = (
    CipherAlgorithm("sm4-gcm", oids.SM4_GCM, 16, 12, authenticated=True),
    CipherAlgorithm("sm4-cbc", oids.SM4_CBC, 16, 16, authenticated=False, note="PKCS#7 padding"),
    CipherAlgorithm("sm4-ctr", None, 16, 16, authenticated=False),
    CipherAlgorithm(
        "sm4-ecb", oids.SM4_ECB, 16, 0, authenticated=False, note="raw blocks and test vectors only"
    ),
)


def catalogue(sm2_backend: SM2Backend, available: Sequence[str]) -> Catalogue:
    """The catalogue with the SM2 engine in use and the engines that load on this host."""
    return Catalogue(
        key_algorithms=tuple(KeyAlgorithm),
        signature_algorithms=SIGNATURE_ALGORITHMS,
        encryption_algorithms=ENCRYPTION_ALGORITHMS,
        hash_algorithms=HASH_ALGORITHMS,
        mac_algorithms=MAC_ALGORITHMS,
        cipher_algorithms=CIPHER_ALGORITHMS,
        sm2_backend=sm2_backend.name,
        sm2_backends_available=tuple(available),
    )
