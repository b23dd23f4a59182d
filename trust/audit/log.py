"""The tamper-evident audit log: append, checkpoint, verify, tail.

Appends are serialised on the single ``audit_head`` row (PostgreSQL: ``SELECT
... FOR UPDATE``; SQLite: a write transaction begun ``IMMEDIATE``), and the
sequence number is the primary key, so concurrent writers in any number of
processes extend one chain and a race can never fork it. Each append is one
short transaction touching the head row and one new record (plus a signed
checkpoint every ``checkpoint_every`` records, in the same transaction so a
checkpoint exists exactly when its record does).

What the chain alone cannot show: someone with write access to the database
who also recomputes hashes (SM3 has no key) can rewrite or extend the records
after the last checkpoint; signed checkpoints are what pin everything up to
them. Removing records off the end is seen when the head row or a checkpoint
still points past them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.exc import OperationalError

from trust.audit.chain_tx import ChainTx, chain_transaction, statements
from trust.audit.encoding import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    check_details,
    checkpoint_encoding,
    format_time,
    record_encoding_json,
)
from trust.audit.schema import audit_checkpoint, audit_head, audit_record
from trust.audit.signing import CheckpointSigner, CheckpointVerifier
from trust.clock import Clock
from trust.db import Database
from trust.errors import (
    AuditChainBroken,
    AuditRecordRefused,
    ConfigurationError,
    StorageUnavailable,
    TrustError,
)

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str  # RFC 3339 UTC with microseconds, as hashed
    actor: str
    action: str
    target: str | None
    outcome: str
    request_id: str | None
    details_json: str
    prev_hash: bytes
    hash: bytes

    @property
    def details(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.details_json)
        return parsed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (hashes in hex); details as stored, parsed when they parse."""
        try:
            details: Any = json.loads(self.details_json)
        except ValueError:
            details = self.details_json
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "details": details,
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: bytes
    time: str  # RFC 3339 UTC with microseconds, as signed
    key_id: str
    algorithm: str
    signature: bytes

    def signed_data(self) -> bytes:
        return checkpoint_encoding(
            seq=self.seq,
            chain_hash=self.hash,
            time=self.time,
            key_id=self.key_id,
            algorithm=self.algorithm,
        )


class Fault(StrEnum):
    ALTERED = "altered"  # a record's content or hash differs from what was chained
    MISSING = "missing"  # a gap in the sequence, or records gone off the end
    LINK_BROKEN = "link_broken"  # prev_hash is not the previous record's hash
    UNEXPECTED = "unexpected"  # a record past the chain head
    HEAD_MISMATCH = "head_mismatch"  # the head row disagrees with the last record
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # a checkpoint's hash is not the chain's
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # a checkpoint's signature does not verify


_FAULT_HINTS = {
    Fault.ALTERED: "altered",
    Fault.MISSING: "removed",
    Fault.LINK_BROKEN: "inserted, removed or reordered",
    Fault.UNEXPECTED: "inserted",
    Fault.HEAD_MISMATCH: "removed or inserted at the end",
    Fault.CHECKPOINT_MISMATCH: "rewritten",
    Fault.CHECKPOINT_SIGNATURE: "checkpoint altered",
}


@dataclass(frozen=True)
class Problem:
    """The first place the log stops being intact: ``seq`` is the record (or checkpoint) there."""

    seq: int
    fault: Fault
    message: str

    def __str__(self) -> str:
        return f"sequence {self.seq}: {self.message} ({_FAULT_HINTS[self.fault]})"


@dataclass(frozen=True)
class VerifyReport:
    records: int  # records checked
    checkpoints: int  # checkpoints checked
    signatures_checked: bool  # False when verify() had no CheckpointVerifier
    head_seq: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def raise_if_broken(self) -> None:
        if self.problem is not None:
            raise AuditChainBroken(
                f"audit log broken at {self.problem}",
                seq=self.problem.seq,
                fault=str(self.problem.fault),
            )


_Row = Row[*tuple[Any, ...]]
# Checked before writing: SQLite would store an over-long value that PostgreSQL refuses.
_FIELD_LIMITS: dict[str, int] = {
    name: audit_record.c[name].type.length  # type: ignore[attr-defined]
    for name in ("actor", "action", "target", "request_id")
}
_RECORD_COLUMNS = (
    audit_record.c.seq,
    audit_record.c.recorded_at,
    audit_record.c.actor,
    audit_record.c.action,
    audit_record.c.target,
    audit_record.c.outcome,
    audit_record.c.request_id,
    audit_record.c.details,
    audit_record.c.prev_hash,
    audit_record.c.hash,
)


def _entry(row: _Row) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        time=row.recorded_at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        request_id=row.request_id,
        details_json=row.details,
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
    )


def _checkpoint(row: _Row) -> Checkpoint:
    return Checkpoint(
        seq=row.seq,
        hash=bytes(row.hash),
        time=row.created_at,
        key_id=row.key_id,
        algorithm=row.algorithm,
        signature=bytes(row.signature),
    )


def _check_fields(fields: Mapping[str, str | None]) -> None:
    if not fields["actor"] or not fields["action"]:
        raise AuditRecordRefused("an audit record needs an actor and an action")
    for name, value in fields.items():
        if value is not None and len(value) > _FIELD_LIMITS[name]:
            raise AuditRecordRefused(f"audit {name} longer than {_FIELD_LIMITS[name]} characters")


class AuditLog:
    """The audit log of one database.

    ``signer`` signs a checkpoint every ``checkpoint_every`` records and on
    ``checkpoint()``; without one no checkpoints are written. ``verifier`` checks
    checkpoint signatures in ``verify()``; without one they are reported unchecked.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        signer: CheckpointSigner | None = None,
        verifier: CheckpointVerifier | None = None,
        checkpoint_every: int = 1000,
        batch_size: int = 1000,
    ) -> None:
        if checkpoint_every < 1 or batch_size < 1:
            raise ConfigurationError("checkpoint_every and batch_size must be positive")
        self._db = db
        self._clock = clock
        self._signer = signer
        self._verifier = verifier
        self._every = checkpoint_every
        self._batch = batch_size
        self._sql = statements(db.dialect)

    def use_checkpoints(
        self, signer: CheckpointSigner, verifier: CheckpointVerifier | None = None
    ) -> None:
        """Sign checkpoints with ``signer`` from now on (and check them with ``verifier``).

        For signers that need the log themselves, such as the key store's audit key:
        the key store writes its own audit records here, so it is built after the log
        and hands its signer in once it exists.
        """
        self._signer = signer
        if verifier is not None:
            self._verifier = verifier

    # --- writing ---------------------------------------------------------------

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: Outcome | str = Outcome.SUCCESS,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one record and return it; AuditRecordRefused for secrets or bad fields."""
        try:
            outcome_value = Outcome(outcome).value
        except ValueError:
            raise AuditRecordRefused(f"audit outcome must be one of {', '.join(Outcome)}") from None
        _check_fields(
            {"actor": actor, "action": action, "target": target, "request_id": request_id}
        )
        details_json = check_details(details).decode("utf-8")
        with chain_transaction(self._db, self._sql) as tx:
            head_seq, head_hash = tx.head()
            seq = head_seq + 1
            # Read inside the lock so record times follow sequence order within one clock.
            time = format_time(self._clock.now())
            digest = chain_hash(
                head_hash,
                record_encoding_json(
                    seq=seq,
                    time=time,
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome_value,
                    request_id=request_id,
                    details_json=details_json,
                ),
            )
            entry = AuditEntry(
                seq=seq,
                time=time,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome_value,
                request_id=request_id,
                details_json=details_json,
                prev_hash=head_hash,
                hash=digest,
            )
            tx.insert_record(
                {
                    "seq": seq,
                    "recorded_at": time,
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "outcome": outcome_value,
                    "request_id": request_id,
                    "details": details_json,
                    "prev_hash": head_hash,
                    "hash": digest,
                },
            )
            tx.move_head(seq, digest)
            if self._signer is not None and seq % self._every == 0:
                self._periodic_checkpoint(tx, self._signer, seq, digest)
        return entry

    def _periodic_checkpoint(
        self, tx: ChainTx, signer: CheckpointSigner, seq: int, digest: bytes
    ) -> None:
        """A checkpoint the signer cannot make (its key suspended, say) must not stop the
        operation being audited: the record is written, the failure logged, and the next
        checkpoint covers these records too (``checkpoint()`` still raises)."""
        try:
            # Signs before it inserts: a refused signature leaves nothing half-written.
            self._write_checkpoint(tx, signer, seq, digest)
        except TrustError as exc:
            log.error("audit checkpoint at %d not signed: %s (%s)", seq, exc.detail, exc.code)

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint at the current head now (None for an empty log).

        Returns the existing checkpoint when the head already has one.
        """
        if self._signer is None:
            raise ConfigurationError("the audit log has no checkpoint signer")
        with chain_transaction(self._db, self._sql) as tx:
            head_seq, head_hash = tx.head()
            if head_seq == 0:
                return None
            existing = tx.checkpoint_at(head_seq)
            if existing is not None:
                return Checkpoint(
                    seq=existing["seq"],
                    hash=bytes(existing["hash"]),
                    time=existing["created_at"],
                    key_id=existing["key_id"],
                    algorithm=existing["algorithm"],
                    signature=bytes(existing["signature"]),
                )
            return self._write_checkpoint(tx, self._signer, head_seq, head_hash)

    def _write_checkpoint(
        self, tx: ChainTx, signer: CheckpointSigner, seq: int, digest: bytes
    ) -> Checkpoint:
        unsigned = Checkpoint(
            seq=seq,
            hash=digest,
            time=format_time(self._clock.now()),
            key_id=signer.key_id,
            algorithm=signer.algorithm,
            signature=b"",
        )
        cp = replace(unsigned, signature=signer.sign(unsigned.signed_data()))
        tx.insert_checkpoint(
            {
                "seq": cp.seq,
                "hash": cp.hash,
                "created_at": cp.time,
                "key_id": cp.key_id,
                "algorithm": cp.algorithm,
                "signature": cp.signature,
            }
        )
        return cp

    # --- reading ---------------------------------------------------------------

    def tail(self, n: int = 20) -> list[AuditEntry]:
        """The last ``n`` records, oldest first."""
        try:
            with self._db.engine.connect() as conn:
                rows = conn.execute(
                    select(*_RECORD_COLUMNS).order_by(audit_record.c.seq.desc()).limit(max(n, 0))
                ).all()
        except OperationalError as exc:
            raise StorageUnavailable("audit log storage failed") from exc
        return [_entry(r) for r in reversed(rows)]

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, in sequence order (one per ``checkpoint_every`` records)."""
        try:
            with self._db.engine.connect() as conn:
                rows = conn.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.seq))
                return [_checkpoint(r) for r in rows]
        except OperationalError as exc:
            raise StorageUnavailable("audit log storage failed") from exc

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Walk the whole chain and every checkpoint; report the first thing out of place.

        Everything is read in one snapshot (PostgreSQL REPEATABLE READ, an SQLite read
        transaction), so appends running meanwhile neither disturb nor extend the check.
        Records come in keyset pages of ``batch_size`` on the primary key, so memory
        stays flat however long the log is. ``progress(done, total)`` follows each page.
        """
        try:
            with self._db.engine.connect() as conn:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN")  # pysqlite would read each SELECT apart
                else:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                head = conn.execute(
                    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
                ).one()
                checkpoints = [
                    _checkpoint(r)
                    for r in conn.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.seq))
                ]
                walk = _Walk(head.seq, bytes(head.hash), checkpoints, self._verifier)
                for batch in self._batches(conn, head.seq):
                    if walk.feed(batch):
                        break
                    if progress is not None:
                        progress(walk.records, head.seq)
                else:
                    walk.finish(
                        conn.execute(
                            select(func.min(audit_record.c.seq)).where(
                                audit_record.c.seq > head.seq
                            )
                        ).scalar()
                    )
        except OperationalError as exc:
            raise StorageUnavailable("audit log storage failed") from exc
        return walk.report()

    def _batches(self, conn: Connection, head_seq: int) -> Iterator[Sequence[_Row]]:
        after = -(1 << 62)  # below any sequence number, so forged ones <= 0 are seen too
        while True:
            rows = conn.execute(
                select(*_RECORD_COLUMNS)
                .where(audit_record.c.seq > after, audit_record.c.seq <= head_seq)
                .order_by(audit_record.c.seq)
                .limit(self._batch)
            ).all()
            if not rows:
                return
            yield rows
            after = rows[-1].seq


class _Walk:
    """The state of one verification pass over the chain."""

    def __init__(
        self,
        head_seq: int,
        head_hash: bytes,
        checkpoints: list[Checkpoint],
        verifier: CheckpointVerifier | None,
    ) -> None:
        self.head_seq = head_seq
        self.head_hash = head_hash
        self.records = 0
        self.checked_checkpoints = 0
        self.problem: Problem | None = None
        self._verifier = verifier
        self._pending = {cp.seq: cp for cp in checkpoints}
        self._expected = 1
        self._prev = GENESIS_HASH
        self._last_checkpoint = 0

    def _fail(self, seq: int, fault: Fault, message: str) -> bool:
        self.problem = Problem(seq, fault, message)
        return True

    def feed(self, rows: Sequence[_Row]) -> bool:
        """Check rows in order; True once a problem is found."""
        return any(self._record(_entry(row)) for row in rows)

    def _record(self, e: AuditEntry) -> bool:
        if e.seq < self._expected:
            return self._fail(e.seq, Fault.UNEXPECTED, "sequence number out of range")
        if e.seq > self._expected:
            return self._fail(
                self._expected, Fault.MISSING, f"record missing (next present is {e.seq})"
            )
        if e.prev_hash != self._prev:
            return self._fail(
                e.seq,
                Fault.LINK_BROKEN,
                f"prev_hash does not match the hash of record {e.seq - 1}",
            )
        try:
            details = json.loads(e.details_json)
            if canonical_json(details).decode("utf-8") != e.details_json:
                return self._fail(e.seq, Fault.ALTERED, "details are not in canonical form")
            encoding = record_encoding_json(
                seq=e.seq,
                time=e.time,
                actor=e.actor,
                action=e.action,
                target=e.target,
                outcome=e.outcome,
                request_id=e.request_id,
                details_json=e.details_json,
            )
        except (ValueError, TrustError):
            return self._fail(e.seq, Fault.ALTERED, "details are not canonical JSON")
        if chain_hash(self._prev, encoding) != e.hash:
            return self._fail(e.seq, Fault.ALTERED, "content does not match its hash")
        self.records += 1
        self._expected += 1
        self._prev = e.hash
        cp = self._pending.pop(e.seq, None)
        return cp is not None and self._checkpoint(cp)

    def _checkpoint(self, cp: Checkpoint) -> bool:
        if cp.hash != self._prev:
            return self._fail(
                cp.seq,
                Fault.CHECKPOINT_MISMATCH,
                f"checkpoint hash differs from the chain: records {self._last_checkpoint + 1}"
                f"..{cp.seq} were rewritten, or the checkpoint was",
            )
        if self._verifier is not None:
            try:
                self._verifier.verify(cp.key_id, cp.algorithm, cp.signed_data(), cp.signature)
            except TrustError as exc:
                return self._fail(
                    cp.seq, Fault.CHECKPOINT_SIGNATURE, f"checkpoint signature: {exc.detail}"
                )
        self.checked_checkpoints += 1
        self._last_checkpoint = cp.seq
        return False

    def finish(self, first_beyond_head: int | None) -> None:
        """After the last record up to the head: the end of the chain and stray checkpoints."""
        last = self._expected - 1
        if last < self.head_seq:
            self._fail(
                self._expected, Fault.MISSING, f"records {self._expected}..{self.head_seq} missing"
            )
        elif self._prev != self.head_hash:
            self._fail(last, Fault.HEAD_MISMATCH, "chain head hash differs from the last record")
        elif first_beyond_head is not None:
            self._fail(
                first_beyond_head,
                Fault.UNEXPECTED,
                f"record after the chain head ({self.head_seq})",
            )
        elif self._pending:
            first = min(self._pending)
            if first <= 0:
                self._fail(first, Fault.CHECKPOINT_MISMATCH, "checkpoint at an impossible sequence")
            else:
                self._fail(
                    last + 1,
                    Fault.MISSING,
                    f"checkpoint at {first} covers records past the end of the chain ({last})",
                )

    def report(self) -> VerifyReport:
        return VerifyReport(
            records=self.records,
            checkpoints=self.checked_checkpoints,
            signatures_checked=self._verifier is not None,
            head_seq=self.head_seq,
            problem=self.problem,
        )
