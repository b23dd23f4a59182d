"""How the key store writes to the audit log, and group commit for signatures.

Every signature is audited before it is returned, so a crash can never leave a
signature without its record. The record (caller, key, version, digest) is known
before the signature is computed, so the key store submits it first and signs while
a writer thread commits it, then waits for that commit: the commit overlaps the
signing (OpenSSL releases the GIL) instead of following it. Records submitted while
a write is in flight share the next transaction (group commit). A lone submission of
one signature is an ordinary ``key.sign`` record (actor = the caller); anything more
is ``key.sign.batch``. ``submit`` takes a whole batch of one caller's signatures
(``KeyStore.sign_many``) as one entry of the queue.

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
from typing import Any, NamedTuple, Protocol

from trust.sm3 import sm3

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:keystore"
# Bytes of a batch record's details, under the audit log's 16 KiB cap with room to spare.
DETAILS_BUDGET = 15_000
# Signatures one write takes at most, so no signer waits behind an endless queue.
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


class SignatureRecord(NamedTuple):
    """One signature to record (a named tuple: built on every signature, and cheaper)."""

    actor: str
    key_id: str
    version: int
    data: bytes  # the message signed, or with ``prehashed`` the digest signed
    prehashed: bool

    @property
    def digest_of(self) -> str:
        return "prehashed" if self.prehashed else "message-sm3"

    @property
    def digest_hex(self) -> str:
        """What the record names: the digest signed, or SM3 of the message (hashed by the
        writer thread, off the signer's path)."""
        return (self.data if self.prehashed else sm3(self.data)).hex()


class Pending:
    """A submitted group of records; ``wait`` returns once they are committed (or raises
    the write's error)."""

    __slots__ = ("records", "_lock", "error")

    def __init__(self, records: list[SignatureRecord]) -> None:
        self.records = records
        self.error: BaseException | None = None
        # A raw lock held until the write ends: the cheapest thing a thread can block on.
        self._lock = threading.Lock()
        self._lock.acquire()

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()
        self._lock.release()  # a second wait returns at once
        if self.error is not None:
            raise self.error


class SignatureAudit:
    """Durable signature records, written by one writer thread per key store.

    ``submit`` queues records and returns at once, so the caller computes its
    signatures while the writer commits; ``wait`` on the result returns only once
    they are committed. Whatever was queued while a write was in flight goes into the
    next one (group commit), up to ``max_group`` signatures a transaction.
    """

    def __init__(
        self, sink: AuditSink, *, budget: int = DETAILS_BUDGET, max_group: int = MAX_GROUP
    ) -> None:
        self._sink = sink
        self._budget = budget
        self._max = max_group
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[Pending] = []
        self._closing = False
        self._thread: threading.Thread | None = None

    def record(self, record: SignatureRecord) -> None:
        self.record_many([record])

    def record_many(self, records: Sequence[SignatureRecord]) -> None:
        """Returns once every record is durable (in as few audit records as the cap allows)."""
        if records:
            self.submit(records).wait()

    def submit(self, records: Sequence[SignatureRecord]) -> Pending:
        pending = Pending(list(records))
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                # Started on first use (and again after close, or in a forked child).
                self._closing = False
                self._thread = threading.Thread(
                    target=self._run, name="keystore-audit", daemon=True
                )
                self._thread.start()
            self._queue.append(pending)
            self._cond.notify()
        return pending

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    self._thread = None  # under the lock: a later submit starts a new one
                    return
                batch = self._take()
            error: BaseException | None = None
            try:
                write_records(self._sink, [r for p in batch for r in p.records], self._budget)
            except BaseException as exc:  # each signer of the batch raises it
                error = exc
            for p in batch:
                p.finish(error)

    def _take(self) -> list[Pending]:
        """Whole submissions up to max_group signatures; always at least the first one."""
        taken, count = 1, len(self._queue[0].records)
        while taken < len(self._queue):
            more = len(self._queue[taken].records)
            if count + more > self._max:
                break
            taken, count = taken + 1, count + more
        batch = self._queue[:taken]
        del self._queue[:taken]
        return batch

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        with self._cond:
            thread, self._closing = self._thread, True
            self._cond.notify()
        if thread is not None:
            thread.join()


_QUEUED = Pending([])
_QUEUED.finish(None)


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

    def submit(self, records: Sequence[SignatureRecord]) -> Pending:
        """Queue ``records``; nothing to wait for in this mode."""
        self.record_many(records)
        return _QUEUED

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
        digest = r.digest_hex
        digest_cost = len(digest) + 3
        group_cost = _GROUP_OVERHEAD + _json_size(r.actor) + _json_size(r.key_id)
        cost = digest_cost + (group_cost if where not in groups else 0)
        if groups and size + cost > budget:
            out.append(_details(groups))
            groups, size = {}, 0
            cost = digest_cost + group_cost
        groups.setdefault(where, []).append(digest)
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
