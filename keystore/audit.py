"""How the key store writes to the audit log, and group commit for signatures.

Every signature is audited before it is returned, so a crash can never leave a
signature without its record. The record (caller, key, version, digest) is known
before the signature is computed, so the key store submits it first and signs while
a writer thread can commit it, then makes sure it is committed (writing it itself
if the writer thread has not started): the commit overlaps the signing (OpenSSL
releases the GIL) where the machine has a core free, and follows it where not.
Records submitted while a write is in flight share the next transaction (group
commit). A lone submission of one signature is an ordinary ``key.sign`` record
(actor = the caller); anything more is ``key.sign.batch``. ``submit`` takes a whole
batch of one caller's signatures (``KeyStore.sign_many``) as one entry of the queue.

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
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from trust.sm3 import sm3

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:keystore"
# Bytes of a batch record's details, under the audit log's 16 KiB cap with room to spare.
DETAILS_BUDGET = 15_000
# Signatures one write takes at most, so no signer waits behind an endless queue.
MAX_GROUP = 1_000
# How long the writer thread lets durable records gather before it writes them (0.1 ms:
# measured against 0, 0.2 and 0.4 ms on 1 thread; longer and the signer writes itself).
DURABLE_GATHER = 0.0001
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
    """A submission of records; ``wait`` returns once they are committed (or raises the
    write's error)."""

    __slots__ = ("records", "done", "error", "_audit")

    def __init__(self, records: list[SignatureRecord], audit: SignatureAudit | None) -> None:
        self.records = records
        self.done = audit is None
        self.error: BaseException | None = None
        self._audit = audit

    def wait(self) -> None:
        if not self.done:
            assert self._audit is not None
            self._audit.settle(self)
        if self.error is not None:
            raise self.error


_QUEUED = Pending([], None)  # what a write-behind caller gets: nothing to wait for


class SignatureAudit:
    """Signature records and their group commit; one per key store.

    ``submit`` queues a caller's records and wakes the writer thread, which lets records
    gather for ``DURABLE_GATHER`` (by then the caller is inside its signature, with the
    GIL released) and commits them while the caller computes. Every write takes what
    is queued (up to ``max_group`` signatures), so records that queue while a write is
    in flight share the next one (group commit).

    - Durable (the default): the caller then waits on the returned ``Pending`` before it
      returns its signatures. If no write has taken its records yet, it writes the queue
      itself rather than wait for the writer thread to be scheduled (on a busy machine
      that can take longer than the commit); otherwise it waits for that write. A
      signature is never returned before its record is committed; a failed write is
      raised in every caller in it.
    - Write-behind (``write_behind`` = an interval in seconds; opt-in,
      ``keystore_audit_mode = "write_behind"``): nothing to wait for; the writer thread
      collects for up to the interval and commits. A crash loses the records of the last
      interval (more while the database is unreachable: failed writes are retried).

    Either way callers wait once ``max_pending`` signatures are queued, and ``close``
    writes everything queued (in write-behind, one last attempt if the database fails).
    """

    def __init__(
        self,
        sink: AuditSink,
        *,
        write_behind: float | None = None,
        budget: int = DETAILS_BUDGET,
        max_group: int = MAX_GROUP,
        max_pending: int = 10 * MAX_GROUP,
    ) -> None:
        self._sink = sink
        self._interval = write_behind
        self._gather = DURABLE_GATHER if write_behind is None else write_behind
        self._budget = budget
        self._max = max_group
        self._max_pending = max_pending
        lock = threading.Lock()
        self._work = threading.Condition(lock)  # the writer thread waits here for records
        self._settled = threading.Condition(lock)  # callers wait here for a write to end
        self._queue: list[Pending] = []
        self._queued = 0  # signatures in the queue
        self._writing = False  # one write at a time keeps the records in queue order
        self._closing = False
        self._thread: threading.Thread | None = None

    def record(self, record: SignatureRecord) -> None:
        self.record_many([record])

    def record_many(self, records: Sequence[SignatureRecord]) -> None:
        """Returns once every record is queued, and in durable mode committed."""
        if records:
            self.submit(records).wait()

    def submit(self, records: Sequence[SignatureRecord]) -> Pending:
        pending = Pending(list(records), self)
        with self._work:
            while self._queued >= self._max_pending:
                self._settled.wait()
            if self._thread is None or not self._thread.is_alive():
                # Started on first use (and again after close, or in a forked child).
                self._closing = False
                self._thread = threading.Thread(
                    target=self._run, name="keystore-audit", daemon=True
                )
                self._thread.start()
            self._queue.append(pending)
            self._queued += len(pending.records)
            # The writer waits only on an empty queue, or (write-behind) for a full group.
            if len(self._queue) == 1 or self._queued >= self._max:
                self._work.notify()
        return pending if self._interval is None else _QUEUED

    def settle(self, pending: Pending) -> None:
        """Durable: return once ``pending`` is written, writing the queue here when no
        write is in flight."""
        with self._work:
            while not pending.done:
                if self._writing:
                    self._settled.wait()
                else:
                    self._write(self._take())

    def _run(self) -> None:
        while True:
            with self._work:
                self._work.wait_for(lambda: (self._queue or self._closing) and not self._writing)
                if not self._closing:
                    # Gather first: write-behind for its interval; durable for a moment, so
                    # that the signer is inside its signature (GIL released) before this
                    # thread needs the GIL, and more records join the write.
                    self._work.wait_for(
                        lambda: self._closing or self._queued >= self._max, self._gather
                    )
                if self._writing or not (self._queue or self._closing):
                    continue  # a caller took the queue meanwhile
                if not self._queue:
                    self._thread = None  # under the lock: a later submit starts a new one
                    return
                self._write(self._take())

    def _write(self, batch: list[Pending]) -> None:
        """Write ``batch`` (just taken from the queue); the lock is released meanwhile."""
        self._writing = True
        final = self._closing
        self._work.release()
        error: BaseException | None = None
        try:
            write_records(self._sink, [r for p in batch for r in p.records], self._budget)
        except BaseException as exc:
            error = exc
        finally:
            self._work.acquire()
        self._writing = False
        if error is not None and self._interval is not None:
            # Write-behind: the calls returned already, so nobody can take the error.
            count = sum(len(p.records) for p in batch)
            if not final:
                log.error("audit of %d signatures failed; retrying", count, exc_info=error)
                self._queue[:0] = batch  # back to the front, tried again after the interval
                self._queued += count
                self._work.wait(self._interval)
                return
            log.error("closing: the audit records of %d signatures are lost", count)
        for p in batch:
            p.error, p.done = error, True  # durable: each caller of the write raises it
        self._settled.notify_all()  # their callers, and callers waiting for room
        if self._queue or self._closing:
            self._work.notify()

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
        self._queued -= count
        return batch

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        with self._work:
            thread, self._closing = self._thread, True
            self._work.notify()
        if thread is not None:
            thread.join()


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
