"""Storage of signers: the ``ca_signer`` table (migration ``ca_0002_signers``) behind a
small protocol, so the registry never writes SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from asn1crypto import parser
from sqlalchemy import Column, Index, LargeBinary, String, Table, bindparam, insert, select, update

from trust.db import Database, UTCDateTime, metadata
from trust.errors import SignerNotFound

ACTIVE = "active"
DISABLED = "disabled"
STATUSES = (ACTIVE, DISABLED)

ca_signer = Table(
    "ca_signer",
    metadata,
    Column("id", String(40), primary_key=True),  # sgn_ + 24 hex digits
    Column("label", String(200), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("source", String(12), nullable=False),  # issued | imported
    Column("certificate", LargeBinary, nullable=False),  # DER
    Column("chain", LargeBinary, nullable=False),  # concatenated DER, issuer first
    Column("certificate_serial", String(40), nullable=True),  # issued by this service's CA
    Column("ca_id", String(40), nullable=True),
    Column("owner", String(200), nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_ca_signer_key_id", "key_id"),
)


@dataclass(frozen=True)
class SignerRecord:
    id: str
    label: str
    key_id: str
    algorithm: str
    source: str
    certificate: bytes
    chain: tuple[bytes, ...]
    certificate_serial: str | None
    ca_id: str | None
    owner: str
    status: str
    created_at: datetime


class SignerStore(Protocol):
    def insert(self, record: SignerRecord) -> None: ...

    def get(self, signer_id: str) -> SignerRecord:
        """The record; ``SignerNotFound`` if there is none."""

    def list_all(self) -> list[SignerRecord]:
        """Every signer, oldest first."""

    def set_status(self, signer_id: str, status: str) -> SignerRecord: ...


def split_der(blob: bytes) -> tuple[bytes, ...]:
    """The DER elements of a concatenation (how a chain is stored)."""
    parts = []
    rest = blob
    while rest:
        _, _, _, header, content, trailer = parser.parse(rest)
        size = len(header) + len(content) + len(trailer)
        parts.append(rest[:size])
        rest = rest[size:]
    return tuple(parts)


_BY_ID = select(ca_signer).where(ca_signer.c.id == bindparam("id"))


class SqlSignerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: SignerRecord) -> None:
        row = {**record.__dict__, "chain": b"".join(record.chain)}
        with self._db.session() as s:
            s.execute(insert(ca_signer), [row])

    def get(self, signer_id: str) -> SignerRecord:
        # A plain connection: this read is on every signing request, a session costs more.
        with self._db.connection() as conn:
            row = conn.execute(_BY_ID, {"id": signer_id}).first()
        if row is None:
            raise SignerNotFound(f"no signer {signer_id}")
        return _record(row)

    def list_all(self) -> list[SignerRecord]:
        with self._db.session() as s:
            rows = s.execute(select(ca_signer).order_by(ca_signer.c.created_at, ca_signer.c.id))
            return [_record(r) for r in rows]

    def set_status(self, signer_id: str, status: str) -> SignerRecord:
        with self._db.session() as s:
            s.execute(update(ca_signer).where(ca_signer.c.id == signer_id).values(status=status))
        return self.get(signer_id)


def _record(row: Any) -> SignerRecord:
    m = row._mapping
    return SignerRecord(
        id=m["id"],
        label=m["label"],
        key_id=m["key_id"],
        algorithm=m["algorithm"],
        source=m["source"],
        certificate=bytes(m["certificate"]),
        chain=split_der(bytes(m["chain"])),
        certificate_serial=m["certificate_serial"],
        ca_id=m["ca_id"],
        owner=m["owner"],
        status=m["status"],
        created_at=m["created_at"],
    )
