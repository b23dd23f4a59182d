"""Storage of CAs and certificates: small protocols, one SQLAlchemy implementation.

As in Boulder, each component gets only the part it needs: issuance reserves and
completes serials (``IssuanceStore``), revocation changes status
(``RevocationStore``), CRL and OCSP only read status (``StatusReader``).
``SqlCertificateStore`` implements them all (``CertificateStore``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import CursorResult, Row, and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ca.schema import ca_authority, ca_certificate, ca_key_generation
from trust.db import Database
from trust.errors import (
    CaNameTaken,
    CaNotFound,
    CertificateNotFound,
    Conflict,
)

RESERVED = "reserved"
ISSUED = "issued"


@dataclass(frozen=True)
class AuthorityRecord:
    id: str
    name: str
    parent_id: str | None
    key_id: str
    algorithm: str
    certificate_serial: str | None
    certificate: bytes | None
    ocsp_key_id: str | None
    ocsp_certificate: bytes | None
    crl_number: int
    crl: bytes | None
    crl_next_update: datetime | None
    created_at: datetime
    generation: int = 1  # of the key in key_id (and certificate, OCSP, CRL fields)


@dataclass(frozen=True)
class RetiredGeneration:
    """A CA key replaced by a rollover; it still signs its certificates' CRLs and OCSP."""

    ca_id: str
    generation: int
    key_id: str
    certificate_serial: str
    certificate: bytes
    ocsp_key_id: str | None
    ocsp_certificate: bytes | None
    crl: bytes | None
    crl_next_update: datetime | None
    new_with_old: bytes | None
    old_with_new: bytes | None
    retired_at: datetime


def generation_view(ca: AuthorityRecord, retired: RetiredGeneration) -> AuthorityRecord:
    """``ca`` as it was with the retired key: what CRLs, OCSP and chains of the
    certificates that key signed work from."""
    return replace(
        ca,
        key_id=retired.key_id,
        certificate_serial=retired.certificate_serial,
        certificate=retired.certificate,
        ocsp_key_id=retired.ocsp_key_id,
        ocsp_certificate=retired.ocsp_certificate,
        crl=retired.crl,
        crl_next_update=retired.crl_next_update,
        generation=retired.generation,
    )


@dataclass(frozen=True)
class CertificateRecord:
    serial: str  # lower-case hex
    ca_id: str
    state: str  # RESERVED until the signed DER is stored, then ISSUED
    profile: str
    profile_version: int
    subject: str
    spki_fingerprint: str
    is_ca: bool
    not_before: datetime
    not_after: datetime
    der: bytes | None
    replaces: str | None
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    escrow_key_id: str | None = None
    pair_serial: str | None = None
    ca_generation: int = 1

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class RevokedEntry:
    serial: str
    revoked_at: datetime
    reason: str


class IssuanceStore(Protocol):
    def get_authority(self, ca_id: str) -> AuthorityRecord: ...

    def authority_generation(self, ca_id: str, generation: int | None) -> AuthorityRecord:
        """The CA with key ``generation`` (None: the current one); ``CaNotFound`` if none."""

    def reserve(self, record: CertificateRecord) -> None:
        """Persist ``record`` (state RESERVED); ``Conflict`` if the serial exists."""

    def complete(self, *issued: tuple[str, bytes]) -> None:
        """Store each (serial, DER) of reserved rows, all in one transaction; ``Conflict``
        (and nothing stored) if any of them is not reserved."""

    def get(self, serial: str) -> CertificateRecord: ...


class StatusReader(Protocol):
    def get_authority(self, ca_id: str) -> AuthorityRecord: ...

    def list_authorities(self) -> list[AuthorityRecord]: ...

    def find(self, serial: str) -> CertificateRecord | None: ...

    def revoked_entries(self, ca_id: str, now: datetime, generation: int = 1) -> list[RevokedEntry]:
        """Revoked, unexpired certificates signed by ``ca_id``'s key ``generation``."""

    def signing_keys(self) -> list[AuthorityRecord]:
        """Every CA with a certificate, once per key generation (retired ones as views)."""


class RevocationStore(Protocol):
    def get(self, serial: str) -> CertificateRecord: ...

    def set_revocation(
        self, serial: str, revoked_at: datetime | None, reason: str | None
    ) -> CertificateRecord: ...


class CertificateStore(IssuanceStore, StatusReader, RevocationStore, Protocol):
    """Everything, for the service object that wires the components."""

    def add_authority(self, record: AuthorityRecord) -> None: ...

    def update_authority(self, ca_id: str, **values: Any) -> AuthorityRecord: ...

    def authority_by_name(self, name: str) -> AuthorityRecord | None: ...

    def next_crl_number(self, ca_id: str) -> int: ...

    def update_generation(self, ca_id: str, generation: int, **values: Any) -> AuthorityRecord:
        """Set CRL or OCSP fields of key ``generation``, current or retired."""

    def retired_generations(self, ca_id: str) -> list[RetiredGeneration]: ...

    def roll_over(self, retired: RetiredGeneration, **current: Any) -> AuthorityRecord:
        """In one transaction: keep the current key as ``retired`` and make ``current``
        the CA's new key generation; ``Conflict`` if another rollover came first."""

    def list_certificates(
        self,
        *,
        ca_id: str | None = None,
        subject: str | None = None,
        status: str | None = None,
        profile: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[CertificateRecord]: ...


# Statements of the issuance and OCSP paths, built once.
_AUTHORITY_BY_ID = select(ca_authority).where(ca_authority.c.id == bindparam("id"))
_CERTIFICATE_BY_SERIAL = select(ca_certificate).where(ca_certificate.c.serial == bindparam("s"))
_RESERVE = insert(ca_certificate)
_COMPLETE = (
    update(ca_certificate)
    .where(and_(ca_certificate.c.serial == bindparam("s"), ca_certificate.c.state == RESERVED))
    .values(state=ISSUED, der=bindparam("der"))
)


def _authority(row: Row[Any]) -> AuthorityRecord:
    return AuthorityRecord(**row._mapping)


def _certificate(row: Row[Any]) -> CertificateRecord:
    return CertificateRecord(**row._mapping)


class SqlCertificateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- authorities ---

    def add_authority(self, record: AuthorityRecord) -> None:
        try:
            with self._db.session() as s:
                s.execute(insert(ca_authority).values(**record.__dict__))
        except IntegrityError:
            raise CaNameTaken(f"a CA named {record.name!r} exists") from None

    def update_authority(self, ca_id: str, **values: Any) -> AuthorityRecord:
        with self._db.session() as s:
            s.execute(update(ca_authority).where(ca_authority.c.id == ca_id).values(**values))
            row = s.execute(select(ca_authority).where(ca_authority.c.id == ca_id)).first()
        if row is None:
            raise CaNotFound(f"no CA {ca_id}")
        return _authority(row)

    def get_authority(self, ca_id: str) -> AuthorityRecord:
        with self._db.connection(write=False) as conn:
            row = conn.execute(_AUTHORITY_BY_ID, {"id": ca_id}).first()
        if row is None:
            raise CaNotFound(f"no CA {ca_id}")
        return _authority(row)

    def authority_by_name(self, name: str) -> AuthorityRecord | None:
        with self._db.session() as s:
            row = s.execute(select(ca_authority).where(ca_authority.c.name == name)).first()
        return None if row is None else _authority(row)

    def list_authorities(self) -> list[AuthorityRecord]:
        with self._db.session() as s:
            rows = s.execute(select(ca_authority).order_by(ca_authority.c.created_at)).all()
        return [_authority(r) for r in rows]

    def next_crl_number(self, ca_id: str) -> int:
        # Increment and read in one transaction: the row lock (PostgreSQL) or the
        # database write lock (SQLite) keeps two workers from sharing a number.
        with self._db.session() as s:
            s.execute(
                update(ca_authority)
                .where(ca_authority.c.id == ca_id)
                .values(crl_number=ca_authority.c.crl_number + 1)
            )
            number = s.execute(
                select(ca_authority.c.crl_number).where(ca_authority.c.id == ca_id)
            ).scalar()
        if number is None:
            raise CaNotFound(f"no CA {ca_id}")
        return int(number)

    # --- key generations ---

    def retired_generations(self, ca_id: str) -> list[RetiredGeneration]:
        g = ca_key_generation.c
        with self._db.session() as s:
            rows = s.execute(
                select(ca_key_generation).where(g.ca_id == ca_id).order_by(g.generation)
            ).all()
        return [RetiredGeneration(**r._mapping) for r in rows]

    def authority_generation(self, ca_id: str, generation: int | None) -> AuthorityRecord:
        ca = self.get_authority(ca_id)
        if generation is None or generation == ca.generation:
            return ca
        for retired in self.retired_generations(ca_id):
            if retired.generation == generation:
                return generation_view(ca, retired)
        raise CaNotFound(f"CA {ca_id} has no key generation {generation}")

    def update_generation(self, ca_id: str, generation: int, **values: Any) -> AuthorityRecord:
        g = ca_key_generation.c
        with self._db.session() as s:
            s.execute(
                update(ca_key_generation)
                .where(and_(g.ca_id == ca_id, g.generation == generation))
                .values(**values)
            )
            s.execute(
                update(ca_authority)
                .where(and_(ca_authority.c.id == ca_id, ca_authority.c.generation == generation))
                .values(**values)
            )
        return self.authority_generation(ca_id, generation)

    def signing_keys(self) -> list[AuthorityRecord]:
        result = []
        for ca in self.list_authorities():
            if ca.certificate is None:
                continue
            result.append(ca)
            result.extend(generation_view(ca, r) for r in self.retired_generations(ca.id))
        return result

    def roll_over(self, retired: RetiredGeneration, **current: Any) -> AuthorityRecord:
        a = ca_authority.c
        try:
            with self._db.session() as s:
                s.execute(insert(ca_key_generation).values(**retired.__dict__))
                result = s.execute(
                    update(ca_authority)
                    .where(and_(a.id == retired.ca_id, a.generation == retired.generation))
                    .values(generation=retired.generation + 1, **current)
                )
                if not isinstance(result, CursorResult) or result.rowcount != 1:
                    raise Conflict(f"CA {retired.ca_id} was rolled over meanwhile")
        except IntegrityError:
            raise Conflict(f"CA {retired.ca_id} was rolled over meanwhile") from None
        return self.get_authority(retired.ca_id)

    # --- certificates ---

    def reserve(self, record: CertificateRecord) -> None:
        try:
            with self._db.connection(write=True) as conn:
                conn.execute(_RESERVE, record.__dict__)
        except IntegrityError:
            raise Conflict(f"serial {record.serial} already exists") from None

    def complete(self, *issued: tuple[str, bytes]) -> None:
        with self._db.connection(write=True) as conn:
            for serial, der in issued:
                result = conn.execute(_COMPLETE, {"s": serial, "der": der})
                if result.rowcount != 1:
                    raise Conflict(f"serial {serial} is not reserved")  # rolls all back

    def find(self, serial: str) -> CertificateRecord | None:
        with self._db.connection(write=False) as conn:
            row = conn.execute(_CERTIFICATE_BY_SERIAL, {"s": serial}).first()
        return None if row is None else _certificate(row)

    def get(self, serial: str) -> CertificateRecord:
        record = self.find(serial)
        if record is None:
            raise CertificateNotFound(f"no certificate with serial {serial}")
        return record

    def set_revocation(
        self, serial: str, revoked_at: datetime | None, reason: str | None
    ) -> CertificateRecord:
        with self._db.session() as s:
            s.execute(
                update(ca_certificate)
                .where(ca_certificate.c.serial == serial)
                .values(revoked_at=revoked_at, revocation_reason=reason)
            )
        return self.get(serial)

    def revoked_entries(self, ca_id: str, now: datetime, generation: int = 1) -> list[RevokedEntry]:
        c = ca_certificate.c
        query = (
            select(c.serial, c.revoked_at, c.revocation_reason)
            .where(
                and_(
                    c.ca_id == ca_id,
                    c.ca_generation == generation,
                    c.revoked_at.is_not(None),
                    c.not_after > now,
                )
            )
            .order_by(c.revoked_at, c.serial)
        )
        with self._db.session() as s:
            rows = s.execute(query).all()
        return [RevokedEntry(r.serial, r.revoked_at, r.revocation_reason) for r in rows]

    def list_certificates(
        self,
        *,
        ca_id: str | None = None,
        subject: str | None = None,
        status: str | None = None,
        profile: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[CertificateRecord]:
        c = ca_certificate.c
        query = select(ca_certificate)
        if ca_id is not None:
            query = query.where(c.ca_id == ca_id)
        if subject:
            query = query.where(func.lower(c.subject).contains(subject.lower(), autoescape=True))
        if profile is not None:
            query = query.where(c.profile == profile)
        if status == "revoked":
            query = query.where(c.revoked_at.is_not(None))
        elif status in (ISSUED, RESERVED):
            query = query.where(and_(c.state == status, c.revoked_at.is_(None)))
        with self._db.session() as s:
            rows = s.execute(
                query.order_by(c.created_at, c.serial).offset(offset).limit(limit)
            ).all()
        return [_certificate(r) for r in rows]
