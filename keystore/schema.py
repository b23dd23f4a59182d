"""Tables of the key store (created by the ``keystore`` migration chain).

``keystore_key`` holds one row of metadata per key; ``keystore_version`` one row
per version with its public key and its sealed private key: the PKCS#8 DER
encrypted under a per-version SM4 data key (``sealed_key``), and that data key
wrapped by the master key (``wrapped_data_key``, ``kek_id``). Destruction nulls
both, keeping the public key and the times.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from trust.db import UTCDateTime, metadata

keystore_key = Table(
    "keystore_key",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("permitted", Text, nullable=False),  # JSON array of principal ids
    Column("state", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activation_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("rotation_seconds", Integer, nullable=True),
    Column("rotated_at", UTCDateTime, nullable=False),
    Column("compromised_at", UTCDateTime, nullable=True),
    Column("destroy_after", UTCDateTime, nullable=True),
    Column("destroyed_at", UTCDateTime, nullable=True),
    Column("imported", Boolean, nullable=False),
    Column("primary_version", Integer, nullable=False),
    Column("state_reason", String(500), nullable=True),  # of the latest state change
)

keystore_version = Table(
    "keystore_version",
    metadata,
    Column("key_id", String(64), ForeignKey("keystore_key.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("public_key", LargeBinary, nullable=True),  # SPKI DER; None for SM4
    Column("fingerprint", String(64), nullable=True),
    Column("sealed_key", LargeBinary, nullable=True),  # nonce || SM4-GCM(PKCS#8 or SM4 key)
    Column("wrapped_data_key", LargeBinary, nullable=True),
    Column("kek_id", String(80), nullable=True),
    Column("destroyed_at", UTCDateTime, nullable=True),
)

# Master-key rotation finds what is left to rewrap by kek_id.
Index("ix_keystore_version_kek_id", keystore_version.c.kek_id)
Index("ix_keystore_key_destroy_after", keystore_key.c.destroy_after)
