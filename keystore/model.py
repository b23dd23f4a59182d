"""What the key store records and hands out: algorithms, purposes, states, the acting
principal, and the typed results of its operations (never private key material)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from trust.keys import KeyAlgorithm


class Algorithm(StrEnum):
    SM2 = "SM2"
    ECDSA_P256 = "ECDSA-P256"
    ECDSA_P384 = "ECDSA-P384"
    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    SM4 = "SM4"  # symmetric data keys

    @property
    def asymmetric(self) -> KeyAlgorithm | None:
        """The ``trust.keys`` algorithm of a key pair; None for SM4."""
        return _ASYMMETRIC.get(self)

    @property
    def can_encrypt(self) -> bool:
        return self not in (Algorithm.ECDSA_P256, Algorithm.ECDSA_P384)

    @property
    def can_sign(self) -> bool:
        return self is not Algorithm.SM4


_ASYMMETRIC = {
    Algorithm.SM2: KeyAlgorithm.SM2,
    Algorithm.ECDSA_P256: KeyAlgorithm.ECDSA_P256,
    Algorithm.ECDSA_P384: KeyAlgorithm.ECDSA_P384,
    Algorithm.RSA_2048: KeyAlgorithm.RSA_2048,
    Algorithm.RSA_3072: KeyAlgorithm.RSA_3072,
}
ALGORITHM_OF = {v: k for k, v in _ASYMMETRIC.items()}


class Purpose(StrEnum):
    SIGN = "sign"
    ENCRYPT = "encrypt"
    CA = "ca"
    TSA = "tsa"
    SEAL = "seal"
    AUDIT = "audit"

    @property
    def signs(self) -> bool:
        return self is not Purpose.ENCRYPT


class KeyState(StrEnum):
    """NIST SP 800-57 part 1 (rev. 5) section 5.3 key states."""

    PRE_ACTIVATION = "pre-activation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"


# Roles (names as in trust.auth.roles.Role) that may manage keys.
ADMIN_ROLES = frozenset({"admin", "key_admin"})


@dataclass(frozen=True)
class Actor:
    """Who asks: ``id`` is written to the audit log and matched against a key's owner and
    permitted principals; ``roles`` gate management; ``key_grants`` are key ids this
    actor may use (from narrowed grants of its token)."""

    id: str
    roles: frozenset[str] = frozenset()
    key_grants: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return not ADMIN_ROLES.isdisjoint(self.roles)


@dataclass(frozen=True)
class GenerateRequest:
    label: str
    algorithm: Algorithm
    purpose: Purpose
    owner: str | None = None  # default: the acting principal
    permitted_principals: frozenset[str] = frozenset()
    activation_at: datetime | None = None  # later than now: the key starts pre-activation
    expires_at: datetime | None = None
    rotation_period: timedelta | None = None


MAX_REASON = 500  # characters of a state change's reason (the column's width)


@dataclass(frozen=True)
class KeyVersionInfo:
    version: int
    created_at: datetime
    public_key_der: bytes | None  # SubjectPublicKeyInfo; None for SM4
    fingerprint: str | None  # SM3 of the SPKI, hex
    kek_id: str | None  # the master key that wraps this version's data key
    destroyed_at: datetime | None


@dataclass(frozen=True)
class KeyInfo:
    id: str
    label: str
    algorithm: Algorithm
    purpose: Purpose
    owner: str
    permitted_principals: frozenset[str]
    state: KeyState
    created_at: datetime
    activation_at: datetime | None
    expires_at: datetime | None
    rotation_period: timedelta | None
    rotated_at: datetime
    compromised_at: datetime | None
    destroy_after: datetime | None  # scheduled destruction
    destroyed_at: datetime | None
    imported: bool
    primary_version: int
    versions: tuple[KeyVersionInfo, ...] = field(default=())
    state_reason: str | None = None  # given with the latest state change, if any

    def version(self, number: int) -> KeyVersionInfo | None:
        for v in self.versions:
            if v.version == number:
                return v
        return None

    @property
    def live_versions(self) -> tuple[KeyVersionInfo, ...]:
        """Versions whose material still exists, newest first."""
        return tuple(v for v in reversed(self.versions) if v.destroyed_at is None)


@dataclass(frozen=True)
class SignInput:
    """One item of ``KeyStore.sign_many``: a message, or with ``prehashed`` its digest."""

    data: bytes
    prehashed: bool = False
    signer_id: bytes | None = None  # SM2 signer identity (message signing only)


@dataclass(frozen=True)
class SignResult:
    key_id: str
    version: int
    algorithm: Algorithm
    signature: bytes


@dataclass(frozen=True)
class VerifyResult:
    key_id: str
    version: int  # the version whose public key verified the signature


@dataclass(frozen=True)
class PublicKeyResult:
    key_id: str
    version: int
    algorithm: Algorithm
    spki_der: bytes
    spki_pem: bytes
    raw: bytes  # SM2/ECDSA: the uncompressed point 04||X||Y; RSA: the SPKI DER again


@dataclass(frozen=True)
class RewrapProgress:
    done: int
    total: int
