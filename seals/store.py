"""Where seals are kept: the ``SealStore`` the seal service needs, and its SQL form.

A status change is one transaction: the seal row moves only from the row version the
caller read (optimistic concurrency: two officers suspending and revoking at once cannot
both win) and the history row gets the next sequence number under the history's primary
key, so the history cannot fork either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seals.registry import CertListKind, RegisteredSeal, SealRecord, SealStatus, StatusChange
from seals.schema import seal, seal_approval, seal_maker, seal_status
from trust.db import Database
from trust.errors import Conflict, SealNotFound


@dataclass(frozen=True)
class MakerRecord:
    key_id: str
    serial: str
    certificate: bytes
    not_after: datetime


class SealStore(Protocol):
    def add(self, record: SealRecord, change: StatusChange) -> None:
        """Store a new seal and its first status; ``Conflict`` when the esID is taken."""

    def get(self, esid: str) -> SealRecord:
        """The seal; ``SealNotFound`` when there is none."""

    def list_seals(
        self,
        *,
        status: str | None = None,
        organization: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[SealRecord]: ...

    def history(self, esid: str) -> list[StatusChange]:
        """Every status the seal went through, oldest first."""

    def registered(self, esid: str) -> RegisteredSeal | None:
        """The made seal and its history in one read; None when there is no such seal."""

    def change(
        self,
        record: SealRecord,
        changes: Sequence[StatusChange],
        fields: Mapping[str, Any] | None = None,
    ) -> SealRecord:
        """Record ``changes`` (the last one is the new status) and ``fields`` on a seal not
        changed since ``record`` was read; ``Conflict`` otherwise."""

    def approve(self, record: SealRecord, officer: str, at: datetime) -> tuple[str, ...]:
        """Record an approval; the officers who approved so far. ``Conflict`` on a repeat."""

    def due_for_expiry(self, at: datetime, limit: int) -> list[SealRecord]: ...

    def maker(self, name: str) -> MakerRecord | None: ...

    def put_maker(self, name: str, maker: MakerRecord, at: datetime, replace: bool) -> MakerRecord:
        """Store the maker (``replace``: over an older one); the stored one when another
        process stored a maker meanwhile."""


_FIELDS = (
    "esid", "type_code", "type_name", "name", "organization", "picture_type", "picture",
    "width_mm", "height_mm", "valid_start", "valid_end", "applicant", "row_version",
    "eseal", "maker_serial", "created_at", "updated_at",
)  # fmt: skip


class SqlSealStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: SealRecord, change: StatusChange) -> None:
        row = {name: getattr(record, name) for name in _FIELDS}
        row |= {
            "status": record.status.value,
            "cert_list_type": 1 if record.cert_list_kind is CertListKind.CERTIFICATES else 2,
            "cert_list": _pack(record.signers),
        }
        try:
            with self._db.session() as s:
                s.execute(insert(seal).values(**row))
                s.execute(insert(seal_status).values(**_change_row(record.esid, change)))
        except IntegrityError:
            raise Conflict(f"a seal with esID {record.esid} exists") from None

    def get(self, esid: str) -> SealRecord:
        with self._db.connection() as s:
            row = s.execute(select(seal).where(seal.c.esid == esid)).first()
            if row is None:
                raise SealNotFound(f"no seal {esid}")
            return _record(row, _approvals(s, esid))

    def list_seals(
        self,
        *,
        status: str | None = None,
        organization: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[SealRecord]:
        query = select(seal).order_by(seal.c.created_at, seal.c.esid).offset(offset).limit(limit)
        if status is not None:
            query = query.where(seal.c.status == status)
        if organization is not None:
            query = query.where(seal.c.organization == organization)
        with self._db.connection() as s:
            return [_record(row, _approvals(s, row.esid)) for row in s.execute(query)]

    def history(self, esid: str) -> list[StatusChange]:
        with self._db.connection() as conn:
            return _history(conn, esid)

    def registered(self, esid: str) -> RegisteredSeal | None:
        with self._db.connection() as conn:
            row = conn.execute(
                select(seal.c.eseal, seal.c.valid_start, seal.c.valid_end).where(
                    seal.c.esid == esid
                )
            ).first()
            if row is None:
                return None
            history = _history(conn, esid)
        return RegisteredSeal(esid, row.eseal, row.valid_start, row.valid_end, tuple(history))

    def change(
        self,
        record: SealRecord,
        changes: Sequence[StatusChange],
        fields: Mapping[str, Any] | None = None,
    ) -> SealRecord:
        values = dict(fields or {})
        values |= {
            "status": changes[-1].status.value,
            "row_version": record.row_version + 1,
            "updated_at": changes[-1].at,
        }
        try:
            with self._db.session() as s:
                result = s.execute(
                    update(seal)
                    .where(
                        and_(seal.c.esid == record.esid, seal.c.row_version == record.row_version)
                    )
                    .values(**values)
                )
                moved = cast(CursorResult[Any], result).rowcount
                if moved != 1:
                    raise Conflict(f"seal {record.esid} changed meanwhile; read it again")
                last = s.execute(
                    select(func.max(seal_status.c.seq)).where(seal_status.c.esid == record.esid)
                ).scalar_one()
                for offset, change in enumerate(changes, start=1):
                    row = _change_row(record.esid, change) | {"seq": (last or 0) + offset}
                    s.execute(insert(seal_status).values(**row))
        except IntegrityError:
            raise Conflict(f"seal {record.esid} changed meanwhile; read it again") from None
        return self.get(record.esid)

    def approve(self, record: SealRecord, officer: str, at: datetime) -> tuple[str, ...]:
        try:
            with self._db.session() as s:
                s.execute(insert(seal_approval).values(esid=record.esid, officer=officer, at=at))
                return _approvals(s, record.esid)
        except IntegrityError:
            raise Conflict(f"{officer} has already approved seal {record.esid}") from None

    def due_for_expiry(self, at: datetime, limit: int) -> list[SealRecord]:
        query = (
            select(seal)
            .where(
                seal.c.valid_end <= at,
                seal.c.status.notin_([SealStatus.REVOKED.value, SealStatus.EXPIRED.value]),
            )
            .order_by(seal.c.valid_end)
            .limit(limit)
        )
        with self._db.connection() as s:
            return [_record(row, _approvals(s, row.esid)) for row in s.execute(query)]

    def maker(self, name: str) -> MakerRecord | None:
        with self._db.connection() as s:
            row = s.execute(select(seal_maker).where(seal_maker.c.name == name)).first()
        if row is None:
            return None
        return MakerRecord(row.key_id, row.serial, row.certificate, row.not_after)

    def put_maker(self, name: str, maker: MakerRecord, at: datetime, replace: bool) -> MakerRecord:
        values = {
            "key_id": maker.key_id,
            "serial": maker.serial,
            "certificate": maker.certificate,
            "not_after": maker.not_after,
            "created_at": at,
        }
        try:
            with self._db.session() as s:
                if replace:
                    s.execute(update(seal_maker).where(seal_maker.c.name == name).values(**values))
                else:
                    s.execute(insert(seal_maker).values(name=name, **values))
        except IntegrityError:
            pass  # another process made one first: use that one
        stored = self.maker(name)
        assert stored is not None
        return stored


def _history(conn: Connection, esid: str) -> list[StatusChange]:
    rows = conn.execute(
        select(seal_status).where(seal_status.c.esid == esid).order_by(seal_status.c.seq)
    ).all()
    return [StatusChange(r.seq, SealStatus(r.status), r.at, r.actor, r.reason) for r in rows]


def _change_row(esid: str, change: StatusChange) -> dict[str, Any]:
    return {
        "esid": esid,
        "seq": change.seq,
        "status": change.status.value,
        "at": change.at,
        "actor": change.actor,
        "reason": change.reason,
    }


def _approvals(s: Session | Connection, esid: str) -> tuple[str, ...]:
    rows = s.execute(
        select(seal_approval.c.officer)
        .where(seal_approval.c.esid == esid)
        .order_by(seal_approval.c.at, seal_approval.c.officer)
    )
    return tuple(r.officer for r in rows)


def _record(row: Any, approvals: tuple[str, ...]) -> SealRecord:
    return SealRecord(
        **{name: getattr(row, name) for name in _FIELDS},
        status=SealStatus(row.status),
        cert_list_kind=CertListKind.CERTIFICATES
        if row.cert_list_type == 1
        else CertListKind.DIGESTS,
        signers=_unpack(row.cert_list),
        approvals=approvals,
    )


# The signer list is stored as length-prefixed entries (certificates or digests alike).
def _pack(items: Sequence[bytes]) -> bytes:
    return b"".join(len(i).to_bytes(4, "big") + i for i in items)


def _unpack(blob: bytes) -> tuple[bytes, ...]:
    items, rest = [], blob
    while rest:
        size = int.from_bytes(rest[:4], "big")
        items.append(rest[4 : 4 + size])
        rest = rest[4 + size :]
    return tuple(items)
