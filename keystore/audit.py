"""How the key store writes to the audit log, and group commit for signatures.

Every signature is audited before it is returned, so a crash can never leave a
signature without its record. To keep that from costing one database
transaction per signature under load, concurrent signers share commits: the
first signer to arrive writes the records of everyone queued behind it in one
append, and the next waiting signer takes over when more arrive meanwhile. A
lone signer writes its own ordinary record (actor = the caller); a group is one
``key.sign.batch`` record listing each signature's caller, key, version and digest.
``record_many`` queues a whole batch of one caller's signatures (``KeyStore.sign_many``)
as one entry of that same queue; a group of more than ``MAX_BATCH`` signatures is
written as one ``key.sign.batch`` record per ``MAX_BATCH`` (the audit log caps details).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

SYSTEM_ACTOR = "system:keystore"
# A batch record lists about 150 bytes per signature; the audit log takes 16 KiB of details.
MAX_BATCH = 64


class AuditSink(Protocol):
    """The part of ``trust.audit.AuditLog`` the key store uses."""

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class SignatureRecord:
    actor: str
    key_id: str
    version: int
    digest_hex: str
    digest_of: str  # "message-sm3" (SM3 of the message) or "prehashed" (the value signed)


@dataclass
class _Waiter:
    records: list[SignatureRecord]
    event: threading.Event = field(default_factory=threading.Event)
    promoted: bool = False
    done: bool = False
    error: BaseException | None = None


class SignatureAudit:
    """Group commit of signature records; ``record`` returns once the record is durable."""

    def __init__(self, sink: AuditSink, max_batch: int = MAX_BATCH) -> None:
        self._sink = sink
        self._max = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False

    def record(self, record: SignatureRecord) -> None:
        self.record_many([record])

    def record_many(self, records: Sequence[SignatureRecord]) -> None:
        """Returns once every record is durable (in as few audit records as the cap allows)."""
        if not records:
            return
        me = _Waiter(list(records))
        with self._lock:
            self._queue.append(me)
            lead = not self._busy
            self._busy = True
        while not lead:
            me.event.wait()
            me.event.clear()
            if me.done:
                break
            lead = me.promoted
        if lead:
            self._lead()
        if me.error is not None:
            raise me.error

    def _lead(self) -> None:
        with self._lock:
            # Whole waiters up to max_batch records; always at least the first one.
            taken, count = 1, len(self._queue[0].records)
            while taken < len(self._queue):
                more = len(self._queue[taken].records)
                if count + more > self._max:
                    break
                taken, count = taken + 1, count + more
            batch = self._queue[:taken]
            del self._queue[:taken]
        error: BaseException | None = None
        try:
            records = [r for w in batch for r in w.records]
            for start in range(0, len(records), self._max):
                self._write(records[start : start + self._max])
        except BaseException as exc:  # handed to every signer of the batch, then re-raised
            error = exc
        with self._lock:
            for w in batch:
                w.error, w.done = error, True
                w.event.set()
            if self._queue:
                successor = self._queue[0]
                successor.promoted = True
                successor.event.set()
            else:
                self._busy = False

    def _write(self, records: list[SignatureRecord]) -> None:
        if len(records) == 1:
            r = records[0]
            self._sink.append(
                r.actor,
                "key.sign",
                target=r.key_id,
                details={"version": r.version, "digest": r.digest_hex, "digest_of": r.digest_of},
            )
            return
        self._sink.append(
            SYSTEM_ACTOR,
            "key.sign.batch",
            details={
                "signatures": [
                    {
                        "actor": r.actor,
                        "key": r.key_id,
                        "version": r.version,
                        "digest": r.digest_hex,
                        "digest_of": r.digest_of,
                    }
                    for r in records
                ]
            },
        )
