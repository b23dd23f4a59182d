"""Key management: key records and versions, the SP 800-57 state machine, envelope
encryption under a master key, the in-process key cache, backups, and the audit
log's checkpoint signer. ``KeyStore`` is the service; everything else supports it."""

from keystore.backup import create_backup, restore_backup
from keystore.checkpoint import (
    KeystoreCheckpointSigner,
    KeystoreCheckpointVerifier,
    audit_key_id,
    ensure_audit_key,
    sign_checkpoints,
)
from keystore.envelope import KekRing
from keystore.model import (
    MAX_REASON,
    Actor,
    Algorithm,
    GenerateRequest,
    KeyInfo,
    KeyState,
    KeyVersionInfo,
    PublicKeyResult,
    Purpose,
    RewrapProgress,
    SignInput,
    SignResult,
    VerifyResult,
)
from keystore.service import KeyStore, build_keystore

__all__ = [
    "MAX_REASON",
    "Actor",
    "Algorithm",
    "GenerateRequest",
    "KekRing",
    "KeyInfo",
    "KeyState",
    "KeyStore",
    "KeyVersionInfo",
    "KeystoreCheckpointSigner",
    "KeystoreCheckpointVerifier",
    "PublicKeyResult",
    "Purpose",
    "RewrapProgress",
    "SignInput",
    "SignResult",
    "VerifyResult",
    "audit_key_id",
    "build_keystore",
    "ensure_audit_key",
    "create_backup",
    "restore_backup",
    "sign_checkpoints",
]
