"""Tables of the seal registry (created by the ``seals`` migration chain).

``seal`` holds one row per seal (what was applied for, its current status and, once
made, the ``.esl`` DER); ``seal_status`` every status it went through, so the status at
any past instant can be answered; ``seal_approval`` the officers who approved it;
``seal_maker`` the key-store key and CA certificate that sign seals.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String, Table, Text

from trust.db import UTCDateTime, metadata

seal = Table(
    "seal",
    metadata,
    Column("esid", String(64), primary_key=True),
    Column("type_code", Integer, nullable=False),
    Column("type_name", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("organization", String(200), nullable=False),
    Column("picture_type", String(8), nullable=False),
    Column("picture", LargeBinary, nullable=False),
    Column("width_mm", Integer, nullable=False),
    Column("height_mm", Integer, nullable=False),
    Column("valid_start", UTCDateTime, nullable=False),
    Column("valid_end", UTCDateTime, nullable=False),
    Column("cert_list_type", Integer, nullable=False),  # 1 certificates, 2 SM3 digests
    Column("cert_list", LargeBinary, nullable=False),  # length-prefixed DER certs or digests
    Column("applicant", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    # Bumped by every change: a transition updates only the version it read.
    Column("row_version", Integer, nullable=False),
    Column("eseal", LargeBinary, nullable=True),  # DER SESeal once made
    Column("maker_serial", String(40), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

seal_status = Table(
    "seal_status",
    metadata,
    Column("esid", String(64), ForeignKey("seal.esid"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
)

seal_approval = Table(
    "seal_approval",
    metadata,
    Column("esid", String(64), ForeignKey("seal.esid"), primary_key=True),
    Column("officer", String(200), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)

seal_maker = Table(
    "seal_maker",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("serial", String(40), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
