"""Tables of the certificate authority (created by the ``ca`` migration chain).

``ca_authority`` holds one row per CA (its key id, current certificate, delegated OCSP
signer and latest CRL); ``ca_certificate`` one row per serial number. A certificate
row is written in state ``reserved`` before anything is signed and becomes ``issued``
when the DER is stored, so the serial's primary key is the uniqueness guarantee.
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

ca_authority = Table(
    "ca_authority",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("parent_id", String(40), ForeignKey("ca_authority.id"), nullable=True),
    Column("key_id", String(64), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("certificate_serial", String(40), nullable=True),
    Column("certificate", LargeBinary, nullable=True),
    Column("ocsp_key_id", String(64), nullable=True),
    Column("ocsp_certificate", LargeBinary, nullable=True),
    Column("crl_number", Integer, nullable=False),
    Column("crl", LargeBinary, nullable=True),
    Column("crl_next_update", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The current key generation (1 until the first rollover); older ones: ca_key_generation.
    Column("generation", Integer, nullable=False, server_default="1"),
)

ca_certificate = Table(
    "ca_certificate",
    metadata,
    Column("serial", String(40), primary_key=True),  # lower-case hex, no leading zeros
    Column("ca_id", String(40), ForeignKey("ca_authority.id"), nullable=False),
    Column("state", String(12), nullable=False),  # reserved | issued
    Column("profile", String(32), nullable=False),
    Column("profile_version", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("spki_fingerprint", String(64), nullable=False),
    Column("is_ca", Boolean, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("der", LargeBinary, nullable=True),
    Column("replaces", String(40), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revocation_reason", String(24), nullable=True),
    # Dual certificates: an encryption certificate's key held in escrow by the key store,
    # and the serial of the signing certificate it was issued with.
    Column("escrow_key_id", String(64), nullable=True),
    Column("pair_serial", String(40), nullable=True),
    # The generation of the CA key that signed it (its CRL and OCSP responder).
    Column("ca_generation", Integer, nullable=False, server_default="1"),
    Index("ix_ca_certificate_ca_id_revoked_at", "ca_id", "revoked_at"),
    Index("ix_ca_certificate_subject", "subject"),
)

# Retired key generations of a CA (rollover): each keeps serving the CRL and OCSP of the
# certificates it signed; ``new_with_old`` certifies the next key with this one and
# ``old_with_new`` this key with the next one (RFC 4210 §4.4 link certificates).
ca_key_generation = Table(
    "ca_key_generation",
    metadata,
    Column("ca_id", String(40), ForeignKey("ca_authority.id"), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("certificate_serial", String(40), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("ocsp_key_id", String(64), nullable=True),
    Column("ocsp_certificate", LargeBinary, nullable=True),
    Column("crl", LargeBinary, nullable=True),
    Column("crl_next_update", UTCDateTime, nullable=True),
    Column("new_with_old", LargeBinary, nullable=True),
    Column("old_with_new", LargeBinary, nullable=True),
    Column("retired_at", UTCDateTime, nullable=False),
)
