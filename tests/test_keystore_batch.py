"""``KeyStore.sign_many``: one check, one lookup, every signature audited in one compact
``key.sign.batch`` record (more only past the details size budget) before any is returned."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from keystore import Algorithm, SignInput
from keystore.audit import SYSTEM_ACTOR, SignatureAudit, SignatureRecord
from tests.test_keystore import ADMIN, APP, STRANGER, Env, env, open_env, request  # noqa: F401
from trust.audit.encoding import MAX_DETAILS_BYTES, canonical_json
from trust.errors import Forbidden, InvalidLength, KeySuspended, StorageUnavailable
from trust.keys import SM2PublicKey, load_public_key
from trust.sm3 import sm3


def _public(e: Env, key_id: str) -> SM2PublicKey:
    public = load_public_key(e.store.public_key(key_id).spki_der)
    assert isinstance(public, SM2PublicKey)
    return public


def _sign_records(e: Env) -> list[Any]:
    """The records of signatures made (not of refusals)."""
    return [
        r
        for r in e.audit.tail(10_000)
        if r.action.startswith("key.sign") and r.outcome == "success"
    ]


def test_sign_many_results_verify(env: Env) -> None:  # noqa: F811
    info = env.store.generate(request(), ADMIN)
    public = _public(env, info.id)
    digest = bytes(range(32))
    items = [
        SignInput(b"first"),
        SignInput(b"second", signer_id=b"alice@example.cn"),
        SignInput(digest, prehashed=True),
    ]
    results = env.store.sign_many(info.id, items, APP)
    assert [(r.key_id, r.version, r.algorithm) for r in results] == [
        (info.id, 1, Algorithm.SM2)
    ] * 3
    public.verify(results[0].signature, b"first")
    public.verify(results[1].signature, b"second", signer_id=b"alice@example.cn")
    public.verify_digest(results[2].signature, digest)
    env.store.verify(info.id, b"first", results[0].signature, APP)


def test_one_audit_record_lists_every_signature(env: Env) -> None:  # noqa: F811
    info = env.store.generate(request(), ADMIN)
    messages = [f"doc {i}".encode() for i in range(5)]
    env.store.sign_many(info.id, [SignInput(m) for m in messages], APP)
    (record,) = _sign_records(env)
    assert (record.actor, record.action, record.outcome) == (
        SYSTEM_ACTOR,
        "key.sign.batch",
        "success",
    )
    assert record.details == {
        "count": 5,
        "groups": [
            {
                "actor": APP.id,
                "key": info.id,
                "version": 1,
                "digest_of": "message-sm3",
                "digests": [sm3(m).hex() for m in messages],
            }
        ],
    }


def test_a_hundred_signatures_are_one_record_and_more_split_by_size(env: Env) -> None:  # noqa: F811
    info = env.store.generate(request(), ADMIN)
    env.store.sign_many(info.id, [SignInput(b"%d" % i) for i in range(100)], APP)
    assert [r.details["count"] for r in _sign_records(env)] == [100]
    messages = [f"doc {i}".encode() for i in range(500)]
    env.store.sign_many(info.id, [SignInput(m) for m in messages], APP)
    records = _sign_records(env)[1:]
    assert [r.action for r in records] == ["key.sign.batch"] * 3
    listed = [d for r in records for g in r.details["groups"] for d in g["digests"]]
    assert listed == [sm3(m).hex() for m in messages]
    assert sum(r.details["count"] for r in records) == 500


def test_refused_batch_signs_nothing(env: Env) -> None:  # noqa: F811
    info = env.store.generate(request(), ADMIN)
    with pytest.raises(Forbidden):
        env.store.sign_many(info.id, [SignInput(b"a"), SignInput(b"b")], STRANGER)
    assert _sign_records(env) == []
    denied = [
        (r.actor, r.action, r.target) for r in env.audit.tail(10_000) if r.outcome == "denied"
    ]
    assert denied == [(STRANGER.id, "key.sign", info.id)]


def test_suspended_key_refused(env: Env) -> None:  # noqa: F811
    info = env.store.generate(request(), ADMIN)
    env.store.suspend(info.id, ADMIN)
    with pytest.raises(KeySuspended):
        env.store.sign_many(info.id, [SignInput(b"a"), SignInput(b"b")], APP)
    assert _sign_records(env) == []


class _Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Mapping[str, Any] | None]] = []

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> object:
        self.calls.append((actor, action, details))
        return None


def _rec(i: int) -> SignatureRecord:
    return SignatureRecord("app", "key_x", 1, i.to_bytes(32, "big"), True)


def test_record_many_chunks_and_single_stays_plain() -> None:
    sink = _Sink()
    # 400 bytes: one group's overhead (about 110) and four 67-byte digests.
    audit = SignatureAudit(sink, budget=400)
    audit.record_many([])
    assert sink.calls == []
    audit.record_many([_rec(0)])
    audit.record_many([_rec(i) for i in range(10)])
    assert [(a, act) for a, act, _ in sink.calls] == [
        ("app", "key.sign"),
        (SYSTEM_ACTOR, "key.sign.batch"),
        (SYSTEM_ACTOR, "key.sign.batch"),
        (SYSTEM_ACTOR, "key.sign.batch"),
    ]
    sizes = [d["count"] for _, _, d in sink.calls[1:] if d is not None]
    assert sizes == [4, 4, 2]


def test_batch_records_stay_under_the_cap_whatever_the_callers() -> None:
    """Many groups with long, escaped actor names still fit the audit log's cap."""
    sink = _Sink()
    callers = ["\u0001" * 255, "官" * 255] + [f"token:{i:012x}" for i in range(40)]
    records = [
        SignatureRecord(
            callers[i % len(callers)], f"key_{i % 7:024x}", 1 + i % 3, i.to_bytes(48, "big"), True
        )  # fmt: skip
        for i in range(2_000)
    ]
    SignatureAudit(sink, max_group=2_000).record_many(records)
    sizes = [len(canonical_json(d)) for _, _, d in sink.calls]
    assert len(sizes) > 1 and max(sizes) <= MAX_DETAILS_BYTES
    assert sum(d["count"] for _, _, d in sink.calls if d is not None) == 2_000


# --- durable: submitted before signing, committed by the writer thread ---------------


def test_a_failed_signature_is_recorded_after_its_request(env: Env) -> None:  # noqa: F811
    """The record goes to the writer before the signature is computed; when computing it
    fails on bad input, a failure record with the code follows and nothing is returned."""
    info = env.store.generate(request(), ADMIN)
    with pytest.raises(InvalidLength):
        env.store.sign(info.id, b"abc", APP, prehashed=True)
    last = env.audit.tail(2)
    assert [(r.actor, r.action, r.target, r.outcome) for r in last] == [
        (APP.id, "key.sign", info.id, "success"),
        (APP.id, "key.sign", info.id, "failure"),
    ]
    assert last[0].details["digest"] == b"abc".hex()
    assert last[1].details == {"version": 1, "count": 1, "code": InvalidLength.code}
    assert env.audit.verify().ok


class _GatedSink(_Sink):
    """Holds every append until ``gate`` is set; ``entered`` tells that one is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def append(self, actor: str, action: str, **kw: Any) -> object:
        self.entered.set()
        assert self.gate.wait(10)
        return super().append(actor, action, **kw)


def test_durable_returns_only_after_the_commit_and_groups_what_queued_meanwhile() -> None:
    sink = _GatedSink()
    audit = SignatureAudit(sink)
    first = audit.submit([_rec(0)])
    assert sink.entered.wait(5)  # the writer is inside the first write
    later = [audit.submit([_rec(i)]) for i in range(1, 4)] + [audit.submit([_rec(4), _rec(5)])]
    waiter = threading.Thread(target=first.wait)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and sink.calls == []  # not committed, so not returned
    sink.gate.set()
    waiter.join(5)
    for pending in later:
        pending.wait()
    assert [(act, (d or {}).get("count")) for _, act, d in sink.calls] == [
        ("key.sign", None),
        ("key.sign.batch", 5),  # everything queued during the first write, one commit
    ]
    audit.close()


def test_durable_write_failure_reaches_every_signer_of_the_group() -> None:
    sink = _FlakySink(failures=1)
    audit = SignatureAudit(sink)
    with pytest.raises(StorageUnavailable):
        audit.record_many([_rec(0), _rec(1)])
    audit.record(_rec(2))  # the writer carries on
    assert [act for _, act, _ in sink.calls] == ["key.sign"]
    audit.close()
    audit.record(_rec(3))  # after close a new writer starts
    audit.close()
    assert len(sink.calls) == 2


# --- write-behind (opt-in) ----------------------------------------------------------


def test_write_behind_returns_first_and_writes_within_the_interval(database_url: str) -> None:
    e = open_env(database_url, audit_mode="write_behind", write_behind_seconds=0.05)
    info = e.store.generate(request(), ADMIN)
    for i in range(30):
        e.store.sign(info.id, b"%d" % i, APP)
    e.store.sign_many(info.id, [SignInput(b"many %d" % i) for i in range(70)], APP)
    deadline = time.monotonic() + 5
    while sum(_count(r) for r in _sign_records(e)) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(_count(r) for r in _sign_records(e)) == 100
    e.store.sign(info.id, b"last", APP)
    e.store.close()  # writes what is still queued
    assert sum(_count(r) for r in _sign_records(e)) == 101
    e.store.sign(info.id, b"after close", APP)  # a new writer starts
    e.store.close()
    assert sum(_count(r) for r in _sign_records(e)) == 102
    assert e.audit.verify().ok
    e.db.dispose()


def _count(record: Any) -> int:
    return int(record.details["count"]) if record.action == "key.sign.batch" else 1


class _FlakySink(_Sink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def append(self, actor: str, action: str, **kw: Any) -> object:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("database down")
        return super().append(actor, action, **kw)


def test_write_behind_callers_wait_only_on_a_full_queue() -> None:
    sink = _GatedSink()
    audit = SignatureAudit(sink, write_behind=0.01, max_group=2, max_pending=4)
    audit.record_many([_rec(0), _rec(1)])  # returns at once; the writer holds it at the gate
    assert sink.entered.wait(5)
    audit.record_many([_rec(i) for i in range(2, 6)])  # four queued: the queue is full
    blocked = threading.Thread(target=audit.record, args=(_rec(6),))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()
    sink.gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    audit.close()
    assert sum((d or {}).get("count", 1) for _, _, d in sink.calls) == 7


def test_write_behind_retries_a_failed_write_and_loses_nothing() -> None:
    sink = _FlakySink(failures=3)
    audit = SignatureAudit(sink, write_behind=0.01)
    audit.record_many([_rec(i) for i in range(5)])
    audit.record(_rec(5))
    deadline = time.monotonic() + 5
    while not sink.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    audit.close()
    assert sink.failures == 0
    assert sum(d.get("count", 1) for _, _, d in sink.calls if d is not None) == 6
