"""The one thing CMS needs from whoever holds the private key.

A ``CmsSigner`` names its key algorithm, gives its certificate and signs bytes the
way ``trust.keys`` does: SM2 with SM3 over Z (default ID) || M, ECDSA with the
curve's hash, RSA PKCS#1 v1.5 with SHA-256. The keystore implements it with
``KeyStore.sign``; ``KeySigner`` wraps an in-memory key (tests, tools).
"""

from __future__ import annotations

from typing import Protocol

from asn1crypto import x509

from trust.errors import InvalidKey
from trust.keys import KeyAlgorithm, PrivateKey, PublicKey, load_public_key


class CmsSigner(Protocol):
    @property
    def algorithm(self) -> KeyAlgorithm: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    def sign(self, data: bytes) -> bytes:
        """The DER (SM2, ECDSA) or PKCS#1 (RSA) signature over ``data``."""


def certificate_public_key(certificate: x509.Certificate) -> PublicKey:
    return load_public_key(certificate["tbs_certificate"]["subject_public_key_info"].dump())


class KeySigner:
    """A ``CmsSigner`` over a ``trust.keys.PrivateKey`` and its certificate."""

    def __init__(self, key: PrivateKey, certificate: x509.Certificate) -> None:
        if certificate_public_key(certificate) != key.public_key():
            raise InvalidKey("the certificate is not for this key")
        self._key = key
        # A parsed copy dumps its cached bytes; one built from values re-encodes every time.
        self._certificate = x509.Certificate.load(certificate.dump())

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._key.algorithm

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)
