"""How the CA reaches its private keys: a small signer protocol and a key source.

The CA never holds key material. It asks a ``CaKeySource`` for a new key or for the
signer of an existing one and gets a ``CaKeySigner`` that signs DER bytes. The
in-memory source over ``trust.keys`` serves tests and tools; the keystore-backed
source is the production one.
"""

from __future__ import annotations

import secrets
import threading
from typing import Protocol

from asn1crypto import algos, core

from keystore.escrow import envelope_key
from trust import oids
from trust.errors import KeyNotFound, UnsupportedAlgorithm
from trust.keys import KeyAlgorithm, PrivateKey, PublicKey, SignatureScheme, generate
from trust.keys import load_public_key as _load_public_key

_ = oids  # registers the GM OIDs with asn1crypto before any SM2 algorithm is built


class CaKeySigner(Protocol):
    """One signing key: its id, algorithm, public key and a ``sign`` over DER bytes."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    @property
    def spki_der(self) -> bytes: ...

    def sign(self, tbs: bytes) -> bytes:
        """The signature of ``tbs`` for ``signature_algorithm(self.algorithm)``: SM2 DER with
        Z over this key and the default ID, ECDSA DER, or the RSA PKCS#1 v1.5 block."""


class CaKeySource(Protocol):
    """Where CA and OCSP-responder keys are made and found."""

    def generate(self, algorithm: KeyAlgorithm, label: str, purpose: str) -> CaKeySigner: ...

    def signer(self, key_id: str) -> CaKeySigner: ...


class LocalSigner:
    """A ``CaKeySigner`` over a private key held in this process."""

    def __init__(self, key_id: str, private_key: PrivateKey) -> None:
        self._key_id = key_id
        self._private = private_key
        self._spki = private_key.public_bytes_spki()

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._private.algorithm

    @property
    def spki_der(self) -> bytes:
        return self._spki

    def sign(self, tbs: bytes) -> bytes:
        scheme = SignatureScheme.RSA_PKCS1V15 if is_rsa(self.algorithm) else None
        return self._private.sign(tbs, scheme=scheme)


class MemoryKeySource:
    """Keys in a dict; for tests and for processes handed their keys explicitly."""

    def __init__(self) -> None:
        self._keys: dict[str, PrivateKey] = {}
        self._lock = threading.Lock()

    def add(self, key_id: str, private_key: PrivateKey) -> LocalSigner:
        with self._lock:
            self._keys[key_id] = private_key
        return LocalSigner(key_id, private_key)

    def private_key(self, key_id: str) -> PrivateKey:
        with self._lock:
            try:
                return self._keys[key_id]
            except KeyError:
                raise KeyNotFound(f"key {key_id} not found") from None

    def generate(self, algorithm: KeyAlgorithm, label: str, purpose: str) -> LocalSigner:
        return self.add("key_" + secrets.token_hex(12), generate(algorithm))

    def signer(self, key_id: str) -> LocalSigner:
        return LocalSigner(key_id, self.private_key(key_id))

    def generate_escrow_key(self, label: str) -> tuple[str, bytes]:
        signer = self.generate(KeyAlgorithm.SM2, label, "encrypt")
        return signer.key_id, signer.spki_der

    def export_enveloped(self, key_id: str, recipient_spki: bytes, admin: str | None) -> bytes:
        return envelope_key(self.private_key(key_id), _load_public_key(recipient_spki))


def is_rsa(algorithm: KeyAlgorithm) -> bool:
    return algorithm.startswith("rsa")


_SIGNATURE_ALGORITHMS = {
    KeyAlgorithm.SM2: "sm3_sm2",
    KeyAlgorithm.ECDSA_P256: "sha256_ecdsa",
    KeyAlgorithm.ECDSA_P384: "sha384_ecdsa",
}


def signature_algorithm(algorithm: KeyAlgorithm) -> algos.SignedDigestAlgorithm:
    """The AlgorithmIdentifier a key of ``algorithm`` signs with: SM3withSM2 and ECDSA without
    parameters (GM/T 0015, RFC 5758), sha256WithRSAEncryption with NULL (RFC 4055)."""
    if is_rsa(algorithm):
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()})
    return algos.SignedDigestAlgorithm({"algorithm": _SIGNATURE_ALGORITHMS[algorithm]})


# Signature algorithms accepted when verifying (certificates, CSRs), by the key they need.
_VERIFIABLE = {
    "sm3_sm2": (KeyAlgorithm.SM2,),
    "sha256_ecdsa": (KeyAlgorithm.ECDSA_P256,),
    "sha384_ecdsa": (KeyAlgorithm.ECDSA_P384,),
    "sha256_rsa": (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096),
}


def verify_signature(
    public_key: PublicKey, algorithm: algos.SignedDigestAlgorithm, message: bytes, signature: bytes
) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` over ``message`` verifies under
    ``public_key`` with ``algorithm``; SM2 uses Z over ``public_key`` and the default ID.

    Only the pairs this service signs with are accepted (e.g. not ECDSA P-384 with SHA-256):
    ``trust.keys`` fixes the hash per key type.
    """
    name = algorithm["algorithm"].native
    if public_key.algorithm not in _VERIFIABLE.get(name, ()):
        raise UnsupportedAlgorithm(
            f"signature algorithm {algorithm['algorithm'].dotted} with a {public_key.algorithm} key"
        )
    scheme = SignatureScheme.RSA_PKCS1V15 if is_rsa(public_key.algorithm) else None
    public_key.verify(signature, message, scheme=scheme)


def load_public_key(spki_der: bytes) -> PublicKey:
    return _load_public_key(spki_der)
