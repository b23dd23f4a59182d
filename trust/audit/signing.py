"""Who signs audit checkpoints and who checks them.

The log only sees these two small protocols, so the keystore can later hand
in a signer backed by a managed key (or an HSM) without the log changing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from trust.errors import InvalidSignature, NotFound, UnsupportedAlgorithm
from trust.keys import KeyAlgorithm, PublicKey, SM2PrivateKey

# The asn1crypto name of SM3withSM2 (1.2.156.10197.1.501), as registered in trust.oids.
SM3_SM2 = "sm3_sm2"


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """A signature over ``data`` (the checkpoint's canonical encoding)."""


class CheckpointVerifier(Protocol):
    def verify(self, key_id: str, algorithm: str, data: bytes, signature: bytes) -> None:
        """Return when ``signature`` is ``key_id``'s over ``data``; raise a TrustError otherwise.

        InvalidSignature for a signature that does not verify, NotFound for an unknown
        key, UnsupportedAlgorithm for an algorithm the key does not use.
        """


class SM2CheckpointSigner:
    """Software SM2 signer (default signer ID). The key id is the public key's
    fingerprint (SM3 of its SubjectPublicKeyInfo) unless one is given."""

    algorithm = SM3_SM2

    def __init__(self, private_key: SM2PrivateKey, key_id: str | None = None) -> None:
        self._key = private_key
        self.key_id = key_id or private_key.public_key().fingerprint()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verifier(self) -> SM2CheckpointVerifier:
        """The verifier that trusts exactly this signer's public key, under its key id."""
        return SM2CheckpointVerifier({self.key_id: self._key.public_key()})


class SM2CheckpointVerifier:
    """Checks SM2 checkpoint signatures against a fixed set of trusted public keys.

    The checkpoint's key id picks the key when it is one of the trusted ids (the
    fingerprints, with ``from_public_keys``). Signers whose ids name something else
    (the key store's ``keystore:<key id>``, which spans that key's versions) are
    checked against every trusted key: what counts is that a trusted key made the
    signature, the id only finds it faster."""

    def __init__(self, public_keys: dict[str, PublicKey]) -> None:
        for key_id, key in public_keys.items():
            if key.algorithm is not KeyAlgorithm.SM2:
                raise UnsupportedAlgorithm(f"checkpoint key {key_id!r} is not an SM2 key")
        self._keys = dict(public_keys)

    @classmethod
    def from_public_keys(cls, keys: Iterable[PublicKey]) -> SM2CheckpointVerifier:
        """Trust ``keys`` under their fingerprints, the key ids SM2CheckpointSigner defaults to."""
        return cls({k.fingerprint(): k for k in keys})

    def verify(self, key_id: str, algorithm: str, data: bytes, signature: bytes) -> None:
        if algorithm != SM3_SM2:
            raise UnsupportedAlgorithm(f"checkpoint key {key_id!r} signs with {SM3_SM2}")
        key = self._keys.get(key_id)
        if key is not None:
            key.verify(signature, data)
            return
        for candidate in self._keys.values():
            try:
                candidate.verify(signature, data)
                return
            except InvalidSignature:
                continue
        raise NotFound(f"no trusted checkpoint key made the signature of {key_id!r}")
