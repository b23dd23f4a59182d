"""One interface for every key type the service uses (SM2, ECDSA P-256/P-384, RSA).

``PrivateKey`` / ``PublicKey`` objects are small and immutable; verification
raises ``trust.errors.InvalidSignature`` instead of returning a bool. Modules:
``base`` (enum, abstract keys, fingerprint), ``sm2`` (SM2 over the pluggable
backend, GM/T 0009 encodings), ``pyca`` (ECDSA and RSA over pyca/cryptography),
``load`` (parsing and generation).
"""

from __future__ import annotations

from trust.keys.base import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    SignatureScheme,
    public_key_fingerprint,
)
from trust.keys.load import generate, load_private_key, load_public_key
from trust.keys.pyca import ECDSAPrivateKey, ECDSAPublicKey, RSAPrivateKey, RSAPublicKey
from trust.keys.sm2 import (
    SM2PrivateKey,
    SM2PublicKey,
    configure_sm2_backend,
    default_sm2_backend,
)

__all__ = [
    "ECDSAPrivateKey",
    "ECDSAPublicKey",
    "KeyAlgorithm",
    "PrivateKey",
    "PublicKey",
    "RSAPrivateKey",
    "RSAPublicKey",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SignatureScheme",
    "configure_sm2_backend",
    "default_sm2_backend",
    "generate",
    "load_private_key",
    "load_public_key",
    "public_key_fingerprint",
]
