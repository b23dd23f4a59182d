"""The tamper-evident audit log: hash-chained records (SM3) and signed checkpoints.

See ``encoding`` for the exact bytes that are hashed and signed, and ``log``
for how appends are serialised and what ``verify`` reports.
"""

from trust.audit.log import (
    AuditEntry,
    AuditLog,
    Checkpoint,
    Fault,
    Outcome,
    Problem,
    VerifyReport,
)
from trust.audit.signing import (
    SM3_SM2,
    CheckpointSigner,
    CheckpointVerifier,
    SM2CheckpointSigner,
    SM2CheckpointVerifier,
)

__all__ = [
    "SM3_SM2",
    "AuditEntry",
    "AuditLog",
    "Checkpoint",
    "CheckpointSigner",
    "CheckpointVerifier",
    "Fault",
    "Outcome",
    "Problem",
    "SM2CheckpointSigner",
    "SM2CheckpointVerifier",
    "VerifyReport",
]
