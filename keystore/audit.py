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
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    event: threading.Event = field(default_factory=threading.Event)
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
            records = [r for w in batch for r in w.records]
            if len(records) == 1:
                self._write_one(records[0])
            else:
                for details in self._batch_details(records):
                    self._sink.append(SYSTEM_ACTOR, "key.sign.batch", details=details)
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

    def _write_one(self, r: SignatureRecord) -> None:
        self._sink.append(
            r.actor,
            "key.sign",
            target=r.key_id,
            details={"version": r.version, "digest": r.digest_hex, "digest_of": r.digest_of},
        )

    def _batch_details(self, records: list[SignatureRecord]) -> list[dict[str, Any]]:
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
            if groups and size + cost > self._budget:
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
