"""How the key store writes to the audit log, and group commit for signatures.

Every signature is audited before it is returned, so a crash can never leave a
signature without its record. To keep that from costing one database
transaction per signature under load, concurrent signers share commits: the
first signer to arrive writes the records of everyone queued behind it in one
append, and the next waiting signer takes over when more arrive meanwhile. A
lone signer writes its own ordinary record (actor = the caller); a group is one
``key.sign.batch`` record. ``record_many`` queues a whole batch of one caller's
signatures (``KeyStore.sign_many``) as one entry of that same queue.

A ``key.sign.batch`` record lists signatures compactly, grouped by caller, key,
version and kind of digest: ``{"count": n, "groups": [{"actor", "key", "version",
"digest_of", "digests": [hex, ...]}]}``, about 67 bytes a signature, so a few
hundred fit under the audit log's 16 KiB details cap (a bigger group is split
over several records by size).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:keystore"
# Bytes of a batch record's details, under the audit log's 16 KiB cap with room to spare.
DETAILS_BUDGET = 15_000
# Signatures one leader writes before handing over, so no signer waits behind an endless queue.
MAX_GROUP = 1_000
_GROUP_OVERHEAD = 100  # the JSON around one group, besides its actor and key


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
    # Only a signer that has to wait gets one: the uncontended path makes no Event.
    event: threading.Event | None = None
    promoted: bool = False
    done: bool = False
    error: BaseException | None = None


class SignatureAudit:
    """Group commit of signature records; ``record`` returns once the record is durable."""

    def __init__(
        self, sink: AuditSink, *, budget: int = DETAILS_BUDGET, max_group: int = MAX_GROUP
    ) -> None:
        self._sink = sink
        self._budget = budget
        self._max = max_group
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
            lead = not self._busy
            if not lead:
                me.event = threading.Event()
            self._queue.append(me)
            self._busy = True
        while not lead:
            assert me.event is not None
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
            # Whole waiters up to max_group signatures; always at least the first one.
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
            write_records(self._sink, [r for w in batch for r in w.records], self._budget)
        except BaseException as exc:  # handed to every signer of the batch, then re-raised
            error = exc
        with self._lock:
            for w in batch:
                w.error, w.done = error, True
                if w.event is not None:
                    w.event.set()
            if self._queue:
                successor = self._queue[0]
                successor.promoted = True
                assert successor.event is not None  # it was queued behind a leader
                successor.event.set()
            else:
                self._busy = False

    def close(self) -> None:
        """Nothing is held back: every ``record`` returned durable."""


class WriteBehindAudit:
    """Opt-in (``keystore_audit_mode = "write_behind"``): ``record`` returns at once and a
    background thread writes what was queued every ``interval`` seconds, in the same
    compact records. A crash loses the records of the last interval (more while the
    database is unreachable: failed writes are retried, and signers wait once
    ``max_pending`` records are queued). ``close`` writes everything still queued."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        interval: float = 0.05,
        budget: int = DETAILS_BUDGET,
        max_pending: int = 10 * MAX_GROUP,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._budget = budget
        self._max_pending = max_pending
        self._pending: list[SignatureRecord] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="keystore-audit", daemon=True)
        self._thread.start()

    def record(self, record: SignatureRecord) -> None:
        self.record_many([record])

    def record_many(self, records: Sequence[SignatureRecord]) -> None:
        with self._cond:
            while not self._closed and len(self._pending) >= self._max_pending:
                self._cond.notify_all()
                self._cond.wait()
            if self._closed:
                raise RuntimeError("the signature audit is closed")
            self._pending.extend(records)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closed or len(self._pending) >= MAX_GROUP, self._interval
                )
                batch, self._pending = self._pending, []
                closed = self._closed
            if batch and not self._flush(batch, final=closed):
                time.sleep(self._interval)
                continue
            with self._cond:
                self._cond.notify_all()  # signers waiting on a full queue
            if closed:
                return

    def _flush(self, batch: list[SignatureRecord], *, final: bool) -> bool:
        """Write ``batch``; False when it failed and went back to the queue for a retry."""
        try:
            write_records(self._sink, batch, self._budget)
            return True
        except Exception:  # the sign calls returned already: keep and retry, never raise here
            if final:
                log.exception("closing: the audit records of %d signatures are lost", len(batch))
                return True
            log.exception("audit of %d signatures failed; retrying", len(batch))
            with self._cond:
                self._pending[:0] = batch
            return False

    def close(self) -> None:
        """Write everything queued (one last attempt if the database fails)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()


def write_records(sink: AuditSink, records: list[SignatureRecord], budget: int) -> None:
    """One ``key.sign`` record for a lone signature, else compact ``key.sign.batch`` ones."""
    if len(records) == 1:
        r = records[0]
        sink.append(
            r.actor,
            "key.sign",
            target=r.key_id,
            details={"version": r.version, "digest": r.digest_hex, "digest_of": r.digest_of},
        )
        return
    for details in _batch_details(records, budget):
        sink.append(SYSTEM_ACTOR, "key.sign.batch", details=details)


def _batch_details(records: list[SignatureRecord], budget: int) -> list[dict[str, Any]]:
    """The details of each ``key.sign.batch`` record: groups, split where one record's
    estimated size would pass the budget."""
    out: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, int, str], list[str]] = {}
    size = 0
    for r in records:
        where = (r.actor, r.key_id, r.version, r.digest_of)
        digest_cost = len(r.digest_hex) + 3
        group_cost = _GROUP_OVERHEAD + _json_size(r.actor) + _json_size(r.key_id)
        cost = digest_cost + (group_cost if where not in groups else 0)
        if groups and size + cost > budget:
            out.append(_details(groups))
            groups, size = {}, 0
            cost = digest_cost + group_cost
        groups.setdefault(where, []).append(r.digest_hex)
        size += cost
    out.append(_details(groups))
    return out


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _details(groups: dict[tuple[str, str, int, str], list[str]]) -> dict[str, Any]:
    return {
        "count": sum(len(d) for d in groups.values()),
        "groups": [
            {"actor": a, "key": k, "version": v, "digest_of": of, "digests": digests}
            for (a, k, v, of), digests in groups.items()
        ],
    }
