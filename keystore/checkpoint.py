"""The audit log's checkpoint signer and verifier, backed by a managed key (purpose
``audit``); implements the protocols of ``trust.audit.signing``.

The checkpoint's key id is ``keystore:<key id>`` without a version: the key can be
rotated, and verification tries every version whose material is not destroyed.
Checkpoint signatures are not themselves audited: the signer runs inside the
audit append it checkpoints, and the checkpoint row is their record.
"""

from __future__ import annotations

from typing import Protocol

from keystore.model import Actor, Algorithm, GenerateRequest, KeyState, Purpose
from keystore.service import KeyStore
from trust.audit.signing import CheckpointSigner, CheckpointVerifier
from trust.errors import KeyPurposeMismatch, NotFound, UnsupportedAlgorithm

PREFIX = "keystore:"
AUDIT_KEY_LABEL = "audit log checkpoints"
# asn1crypto names of the signature algorithms, as the audit log records them.
ALGORITHM_NAMES = {
    Algorithm.SM2: "sm3_sm2",
    Algorithm.ECDSA_P256: "sha256_ecdsa",
    Algorithm.ECDSA_P384: "sha384_ecdsa",
    Algorithm.RSA_2048: "sha256_rsa",
    Algorithm.RSA_3072: "sha256_rsa",
}


class KeystoreCheckpointSigner:
    def __init__(self, store: KeyStore, key_id: str) -> None:
        info = store._entry(key_id).info
        if info.purpose is not Purpose.AUDIT:
            raise KeyPurposeMismatch(f"key {key_id} is not an audit key")
        self._store = store
        self._key_id = key_id
        self._algorithm = ALGORITHM_NAMES[info.algorithm]

    @property
    def key_id(self) -> str:
        return PREFIX + self._key_id

    @property
    def algorithm(self) -> str:
        return self._algorithm

    def sign(self, data: bytes) -> bytes:
        return self._store._sign_unaudited(self._key_id, data)[1]


class KeystoreCheckpointVerifier:
    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def verify(self, key_id: str, algorithm: str, data: bytes, signature: bytes) -> None:
        if not key_id.startswith(PREFIX):
            raise NotFound(f"checkpoint key {key_id!r} is not a key store key")
        own = key_id.removeprefix(PREFIX)
        info = self._store._entry(own).info
        if info.purpose is not Purpose.AUDIT:
            raise NotFound(f"key {own} is not an audit key")
        if ALGORITHM_NAMES.get(info.algorithm) != algorithm:
            raise UnsupportedAlgorithm(f"checkpoint key {key_id!r} does not sign with {algorithm}")
        self._store._verify_unaudited(own, data, signature)


class CheckpointedLog(Protocol):
    """The part of ``trust.audit.AuditLog`` that takes a checkpoint signer."""

    def use_checkpoints(
        self, signer: CheckpointSigner, verifier: CheckpointVerifier | None = None
    ) -> None: ...


def audit_key_id(store: KeyStore) -> str | None:
    """The active audit key (the oldest, should there be several), if any."""
    ids = store._key_ids(Purpose.AUDIT, KeyState.ACTIVE)
    return ids[0] if ids else None


def ensure_audit_key(store: KeyStore, actor: Actor) -> tuple[str, bool]:
    """The active audit key's id, made now (SM2) when there is none; True if made."""
    existing = audit_key_id(store)
    if existing is not None:
        return existing, False
    request = GenerateRequest(AUDIT_KEY_LABEL, Algorithm.SM2, Purpose.AUDIT)
    return store.generate(request, actor).id, True


def sign_checkpoints(store: KeyStore, log: CheckpointedLog) -> str | None:
    """Have ``log`` sign its checkpoints with the active audit key and check them with the
    key store; returns the key id, or None (and changes nothing) when there is no audit key."""
    key_id = audit_key_id(store)
    if key_id is None:
        return None
    log.use_checkpoints(KeystoreCheckpointSigner(store, key_id), KeystoreCheckpointVerifier(store))
    return key_id
