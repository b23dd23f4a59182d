"""The token log table (created by the ``timestamp`` migration chain).

The serial number is the primary key: the database refuses a second token with
the same serial, whichever worker or restart drew it.
"""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, String, Table

from trust.db import metadata

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
