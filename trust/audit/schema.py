"""Tables of the audit log (created by the ``audit`` migration chain).

``audit_head`` is a single row (id 1) holding the sequence and hash of the
last record: appends lock it to serialise, so they never scan the log, and
verify compares it with the last record to notice a removed or forged tail.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from trust.db import metadata

# SQLite makes an INTEGER PRIMARY KEY the rowid (fast, still unique); BIGINT elsewhere.
_Seq = BigInteger().with_variant(Integer(), "sqlite")

audit_record = Table(
    "audit_record",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    # RFC 3339 UTC text with microseconds: exactly what the hash covers, on every database.
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("request_id", String(100), nullable=True),
    # Canonical JSON text, exactly the bytes the record hash covers.
    Column("details", Text, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

audit_checkpoint = Table(
    "audit_checkpoint",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("algorithm", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)
