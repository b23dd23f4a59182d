"""The token log and unit tables (created by the ``timestamp`` migration chain).

The serial number is the primary key: the database refuses a second token with
the same serial, whichever worker or restart drew it.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, String, Table

from trust.db import UTCDateTime, metadata

tsa_token = Table(
    "tsa_token",
    metadata,
    # Lower-case hex of the TSTInfo serialNumber, no leading zeros.
    Column("serial_hex", String(40), primary_key=True),
    Column("unit", String(64), nullable=False),
    # RFC 3339 UTC text with microseconds, as in the token's genTime.
    Column("gen_time", String(32), nullable=False),
    Column("policy", String(128), nullable=False),
    Column("hash_algorithm", String(16), nullable=False),
    Column("imprint_hex", String(128), nullable=False),
    Column("token", LargeBinary, nullable=False),
)

# One row per key generation of a unit: rotation adds generation n+1 and retires n.
# The (name, generation) key makes two concurrent rotations of a unit conflict.
tsa_unit = Table(
    "tsa_unit",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("ca_id", String(64), nullable=False),
    Column("certificate", LargeBinary, nullable=False),  # DER
    Column("chain", LargeBinary, nullable=False),  # issuer certificates, DER one after another
    Column("policy", String(128), nullable=False),
    Column("accuracy_us", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # active | retired
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),
)
