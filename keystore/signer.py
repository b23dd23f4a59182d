"""Signing handles over the key store, for the domains that sign with its keys.

``KeystoreSigner`` signs with a key's primary version under one actor, so the key store's
checks (state, purpose, grants) and its signature audit apply to every use.
``KeystoreCmsSigner`` adds the certificate, making it a ``trust.cms.CmsSigner`` for CMS
SignedData (timestamp tokens, signed reports, CMS signing). It is bound to the key version
the certificate certifies: after a rotation the certificate no longer matches the primary,
and signing is refused instead of producing a signature the certificate cannot verify.
"""

from __future__ import annotations

from asn1crypto import x509

from keystore.model import Actor
from keystore.service import KeyStore
from trust.errors import InvalidKey, KeyNotActive, UnsupportedAlgorithm
from trust.keys import KeyAlgorithm, SignatureScheme


class KeystoreSigner:
    """Signs through ``keystore`` with ``key_id``'s primary version, as ``actor``."""

    def __init__(self, keystore: KeyStore, actor: Actor, key_id: str) -> None:
        self._keystore = keystore
        self._actor = actor
        self._key_id = key_id
        public = keystore.public_key(key_id)
        self._version = public.version
        self._spki = public.spki_der
        asymmetric = public.algorithm.asymmetric
        if asymmetric is None:
            raise UnsupportedAlgorithm(f"key {key_id} is not a key pair")
        self._algorithm = asymmetric
        # RSA certificates and CMS use PKCS#1 v1.5 unless a profile says otherwise.
        self._scheme = SignatureScheme.RSA_PKCS1V15 if asymmetric.startswith("rsa") else None

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @property
    def spki_der(self) -> bytes:
        return self._spki

    def sign(self, data: bytes) -> bytes:
        return self._keystore.sign(self._key_id, data, self._actor, scheme=self._scheme).signature


class KeystoreCmsSigner(KeystoreSigner):
    """A ``trust.cms.CmsSigner`` whose private key stays in the key store."""

    def __init__(
        self, keystore: KeyStore, actor: Actor, key_id: str, certificate: x509.Certificate
    ) -> None:
        super().__init__(keystore, actor, key_id)
        if certificate["tbs_certificate"]["subject_public_key_info"].dump() != self._spki:
            raise InvalidKey(f"the certificate is not for the primary version of key {key_id}")
        # A parsed copy dumps its cached bytes; one built from values re-encodes every time.
        self._certificate = x509.Certificate.load(certificate.dump())

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        result = self._keystore.sign(self._key_id, data, self._actor, scheme=self._scheme)
        if result.version != self._version:
            # Rotated since this handle was made: the signature is by a key the
            # certificate does not certify. The service must re-certify the key first.
            raise KeyNotActive(
                f"key {self._key_id} was rotated to version {result.version}; "
                f"its certificate certifies version {self._version}"
            )
        return result.signature
