"""TSA units kept in the store: their records, creation, rotation, and the units a
``TimestampAuthority`` serves from them.

Each unit has one active generation (key id, certificate from a CA's ``tsa`` profile,
issuer chain, policy, accuracy). Rotation makes a new key in the key store, has the
same CA re-key the unit's certificate to it, and retires the old generation in one
transaction. The old key stays active in the key store: workers that have not yet
reloaded (``StoredUnits`` does so every ``refresh_seconds``) keep issuing valid tokens
with it, so there is no downtime, and tokens of every generation keep verifying since
each carries (or names) its own certificate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import pem, x509
from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError

from ca.issue import IssueRequest
from ca.service import CertificateAuthority
from keystore.model import ALGORITHM_OF, Actor, GenerateRequest, Purpose
from keystore.service import KeyStore
from keystore.signer import KeystoreCmsSigner
from timestamp.protocol import check_policy
from timestamp.schema import tsa_unit
from timestamp.units import TsaUnit
from trust.audit.attempts import audited
from trust.auth import AuditSink
from trust.clock import Clock
from trust.db import Database
from trust.errors import (
    BadRequest,
    Conflict,
    KeyBoundToTsaUnit,
    NotFound,
    UnsupportedAlgorithm,
)
from trust.keys import KeyAlgorithm

ACTIVE = "active"
RETIRED = "retired"
# One principal for every process (API workers, trustctl) owns and uses the unit keys.
TSA_ACTOR = Actor("tsa-service", frozenset({"key_admin"}))


@dataclass(frozen=True)
class UnitRecord:
    name: str
    generation: int
    key_id: str
    ca_id: str
    certificate: bytes  # DER
    chain: tuple[bytes, ...]  # issuer certificates (DER), issuing CA first
    policy: str
    accuracy: timedelta
    state: str  # active | retired
    created_at: datetime
    retired_at: datetime | None = None

    @property
    def chain_pem(self) -> str:
        return "".join(
            pem.armor("CERTIFICATE", der).decode("ascii") for der in (self.certificate, *self.chain)
        )


@dataclass(frozen=True)
class UnitPlan:
    """What ``UnitRegistry.ensure`` makes when the unit does not exist yet."""

    name: str
    algorithm: KeyAlgorithm
    ca_id: str
    policy: str
    accuracy: timedelta
    organization: str = "Trust Service"


class SqlUnitStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self, *, include_retired: bool = False) -> list[UnitRecord]:
        query = select(tsa_unit).order_by(tsa_unit.c.name, tsa_unit.c.generation)
        if not include_retired:
            query = query.where(tsa_unit.c.state == ACTIVE)
        with self._db.session() as s:
            return [_record(row) for row in s.execute(query)]

    def active(self, name: str) -> UnitRecord | None:
        query = select(tsa_unit).where(tsa_unit.c.name == name, tsa_unit.c.state == ACTIVE)
        with self._db.session() as s:
            row = s.execute(query).first()
        return None if row is None else _record(row)

    def set_policy(self, name: str, policy: str) -> UnitRecord:
        """The active generation of ``name`` with its default policy changed (not part of
        its certificate, so no new generation); ``NotFound`` if there is none."""
        with self._db.session() as s:
            s.execute(
                update(tsa_unit)
                .where(tsa_unit.c.name == name, tsa_unit.c.state == ACTIVE)
                .values(policy=policy)
            )
            row = s.execute(
                select(tsa_unit).where(tsa_unit.c.name == name, tsa_unit.c.state == ACTIVE)
            ).first()
        if row is None:
            raise NotFound(f"no TSA unit {name}")
        return _record(row)

    def refuse_key_rotation(self, key_id: str) -> None:
        """The key store's rotation guard: the unit's certificate certifies this version of
        its key, so a key-store rotation would leave the unit signing with a key its
        certificate does not certify. The unit is rotated as a whole instead."""
        query = select(tsa_unit.c.name).where(
            tsa_unit.c.key_id == key_id, tsa_unit.c.state == ACTIVE
        )
        with self._db.session() as s:
            name = s.execute(query).scalar()
        if name is not None:
            raise KeyBoundToTsaUnit(
                f"key {key_id} is the key of TSA unit {name}, whose certificate certifies this "
                f"version: rotate the unit instead (trustctl tsa rotate {name}, or "
                f"POST /v1/tsa/units/{name}/rotate), which makes a new key and certificate",
                unit=name,
            )

    def add(self, record: UnitRecord, *, replaces: UnitRecord | None = None) -> None:
        """Insert ``record``, retiring ``replaces`` in the same transaction; ``Conflict`` when
        the generation is taken or ``replaces`` is no longer active (a concurrent rotation)."""
        row = {
            "name": record.name,
            "generation": record.generation,
            "key_id": record.key_id,
            "ca_id": record.ca_id,
            "certificate": record.certificate,
            # PEM: a self-delimiting list of certificates in one column.
            "chain": b"".join(pem.armor("CERTIFICATE", der) for der in record.chain),
            "policy": record.policy,
            "accuracy_us": record.accuracy // timedelta(microseconds=1),
            "state": ACTIVE,
            "created_at": record.created_at,
            "retired_at": None,
        }
        try:
            with self._db.session() as s:
                if replaces is not None:
                    done = s.execute(
                        update(tsa_unit)
                        .where(
                            tsa_unit.c.name == replaces.name,
                            tsa_unit.c.generation == replaces.generation,
                            tsa_unit.c.state == ACTIVE,
                        )
                        .values(state=RETIRED, retired_at=record.created_at)
                    )
                    if not isinstance(done, CursorResult) or done.rowcount != 1:
                        raise Conflict(f"TSA unit {record.name} is being rotated by someone else")
                s.execute(insert(tsa_unit).values(**row))
        except IntegrityError:
            taken = f"TSA unit {record.name} generation {record.generation} exists"
            raise Conflict(taken) from None


def guard_unit_keys(keystore: KeyStore, db: Database) -> None:
    """Have ``keystore`` refuse to rotate the key of an active unit of ``db`` (every process
    that may rotate keys calls this where it builds its key store)."""
    keystore.guard_rotation(SqlUnitStore(db).refuse_key_rotation)


def _record(row: Any) -> UnitRecord:
    chain = tuple(der for _, _, der in pem.unarmor(bytes(row.chain), multiple=True))
    return UnitRecord(
        name=row.name,
        generation=row.generation,
        key_id=row.key_id,
        ca_id=row.ca_id,
        certificate=bytes(row.certificate),
        chain=chain,
        policy=row.policy,
        accuracy=timedelta(microseconds=row.accuracy_us),
        state=row.state,
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


class UnitRegistry:
    """Creates and rotates units: keys in ``keystore`` (purpose ``tsa``, owned by
    ``TSA_ACTOR``), certificates from ``ca`` (profile ``tsa``), every change audited."""

    def __init__(
        self,
        store: SqlUnitStore,
        keystore: KeyStore,
        ca: CertificateAuthority,
        clock: Clock,
        audit: AuditSink,
    ) -> None:
        self._store = store
        self._keystore = keystore
        self._ca = ca
        self._clock = clock
        self._audit = audit

    @property
    def store(self) -> SqlUnitStore:
        return self._store

    def ensure(self, plan: UnitPlan) -> tuple[UnitRecord, bool]:
        """The active generation of ``plan.name``, made first if there is none; the flag
        says whether it was made now. Two processes racing: the loser reads the winner's."""
        check_policy(plan.policy)
        existing = self._store.active(plan.name)
        if existing is not None:
            return existing, False
        key_id = self._new_key(plan.name, plan.algorithm, 1)
        issued = self._ca.issue(
            IssueRequest(
                ca_id=plan.ca_id,
                profile="tsa",
                public_key=self._keystore.public_key(key_id).spki_der,
                subject={
                    "country_name": "CN",
                    "organization_name": plan.organization,
                    "common_name": f"{plan.organization} TSA {plan.name}",
                },
            ),
            actor=TSA_ACTOR.id,
        )
        record = self._new_record(
            plan.name, 1, key_id, plan.ca_id, issued.certificate_der, plan.policy, plan.accuracy
        )
        try:
            self._store.add(record)
        except Conflict:
            found = self._store.active(plan.name)
            if found is None:
                raise
            return found, False
        self._audit.append(
            TSA_ACTOR.id, "tsa.unit.create", target=plan.name, details=_details(record)
        )
        return record, True

    def rotate(self, name: str, *, actor: str) -> UnitRecord:
        """A new key and certificate (same CA, subject, policy and accuracy) for unit ``name``."""
        try:
            current = self._store.active(name)
            if current is None:
                raise NotFound(f"no TSA unit {name}")
            old = x509.Certificate.load(current.certificate)
            algorithm = self._keystore.public_key(current.key_id).algorithm.asymmetric
            if algorithm is None:
                raise UnsupportedAlgorithm(f"key {current.key_id} is not a key pair")
            key_id = self._new_key(name, algorithm, current.generation + 1)
            issued = self._ca.rekey(
                format(old.serial_number, "x"),
                public_key=self._keystore.public_key(key_id).spki_der,
                actor=actor,
            )
            record = self._new_record(
                name,
                current.generation + 1,
                key_id,
                current.ca_id,
                issued.certificate_der,
                current.policy,
                current.accuracy,
            )
            self._store.add(record, replaces=current)
        except Exception as exc:
            code = getattr(exc, "code", "internal_error")
            self._audit.append(
                actor, "tsa.unit.rotate", target=name, outcome="failure", details={"code": code}
            )
            raise
        self._audit.append(actor, "tsa.unit.rotate", target=name, details=_details(record))
        return record

    def set_policy(self, name: str, policy: str, *, actor: str) -> UnitRecord:
        """Make ``policy`` the unit's TSA policy: tokens name it, and requests must name it
        or none (running workers switch within ``refresh_seconds``)."""

        def change() -> tuple[UnitRecord, str | None]:
            before = self._store.active(name)
            changed = self._store.set_policy(name, check_policy(policy))
            return changed, None if before is None else before.policy

        record, _ = audited(
            self._audit,
            actor,
            "tsa.unit.policy",
            name,
            change,
            lambda done: {"generation": done[0].generation, "from": done[1], "to": policy},
        )
        return record

    def tsa_unit(self, record: UnitRecord) -> TsaUnit:
        certificate = x509.Certificate.load(record.certificate)
        return TsaUnit(
            record.name,
            KeystoreCmsSigner(self._keystore, TSA_ACTOR, record.key_id, certificate),
            record.policy,
            accuracy=record.accuracy,
            chain=tuple(x509.Certificate.load(der) for der in record.chain),
        )

    def _new_key(self, name: str, algorithm: KeyAlgorithm, generation: int) -> str:
        stored = ALGORITHM_OF.get(algorithm)
        if stored is None:
            raise UnsupportedAlgorithm(f"the key store does not hold {algorithm} keys")
        info = self._keystore.generate(
            GenerateRequest(
                label=f"tsa-{name}-{generation}", algorithm=stored, purpose=Purpose.TSA
            ),
            TSA_ACTOR,
        )
        return info.id

    def _new_record(
        self,
        name: str,
        generation: int,
        key_id: str,
        ca_id: str,
        certificate: bytes,
        policy: str,
        accuracy: timedelta,
    ) -> UnitRecord:
        return UnitRecord(
            name=name,
            generation=generation,
            key_id=key_id,
            ca_id=ca_id,
            certificate=certificate,
            chain=tuple(self._ca.chain(ca_id)),
            policy=policy,
            accuracy=accuracy,
            state=ACTIVE,
            created_at=self._clock.now(),
        )


def _details(record: UnitRecord) -> dict[str, object]:
    return {
        "generation": record.generation,
        "key_id": record.key_id,
        "ca_id": record.ca_id,
        "certificate_serial": format(x509.Certificate.load(record.certificate).serial_number, "x"),
        "policy": record.policy,
    }


class StoredUnits:
    """The active units of the store as ``TsaUnit``s, re-read at most every
    ``refresh_seconds`` (so a rotation or policy change made by another process is picked
    up without a restart) and rebuilt only when a generation or policy changed."""

    def __init__(self, registry: UnitRegistry, refresh_seconds: float = 5.0) -> None:
        if refresh_seconds <= 0:
            raise BadRequest("refresh_seconds must be positive")
        self._registry = registry
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._units: dict[str, TsaUnit] = {}
        self._versions: dict[str, tuple[int, str]] = {}  # generation, policy
        self._due = 0.0

    def current(self) -> Mapping[str, TsaUnit]:
        if time.monotonic() >= self._due:
            self.refresh(only_if_due=True)
        return self._units

    def refresh(self, *, only_if_due: bool = False) -> None:
        with self._lock:
            # Threads that found the units due together: the first one re-reads.
            if only_if_due and time.monotonic() < self._due:
                return
            records = self._registry.store.list()
            units = dict(self._units)
            for record in records:
                if self._versions.get(record.name) != (record.generation, record.policy):
                    units[record.name] = self._registry.tsa_unit(record)
            names = {r.name for r in records}
            self._units = {name: unit for name, unit in units.items() if name in names}
            self._versions = {r.name: (r.generation, r.policy) for r in records}
            self._due = time.monotonic() + self._refresh_seconds
