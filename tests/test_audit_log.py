"""The audit log on SQLite and PostgreSQL: appends, checkpoints, and verification against an
attacker who edits the tables directly in SQL."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, text

from tests.conftest import PG_ADMIN_URL, _pg_admin_engine, need_service
from trust import migrations
from trust.audit import AuditLog, Fault, Outcome, SM2CheckpointSigner, SM2CheckpointVerifier
from trust.audit.encoding import chain_hash, record_encoding
from trust.audit.schema import audit_checkpoint, audit_head, audit_record
from trust.clock import FakeClock
from trust.db import Database
from trust.errors import AuditChainBroken, AuditRecordRefused, ConfigurationError
from trust.keys import SM2PrivateKey

EVERY = 4  # checkpoints at 4, 8, 12 in the 12-record pristine log
RECORDS = 12


@pytest.fixture(scope="module")
def signer() -> SM2CheckpointSigner:
    return SM2CheckpointSigner(SM2PrivateKey.generate())


def open_log(db: Database, signer: SM2CheckpointSigner, **kwargs) -> AuditLog:
    kwargs.setdefault("checkpoint_every", EVERY)
    return AuditLog(db, FakeClock(), signer=signer, verifier=signer.verifier(), **kwargs)


def fill(log: AuditLog, clock: FakeClock | None = None, n: int = RECORDS) -> None:
    for i in range(1, n + 1):
        log.append(
            f"user{i % 3}",
            "key.sign" if i % 2 else "seal.issue",
            target=None if i % 4 == 0 else f"key/{i}",
            outcome=Outcome.FAILURE if i % 5 == 0 else Outcome.SUCCESS,
            request_id=None if i % 3 == 0 else f"req-{i}",
            details={"i": i, "note": "签名" if i % 2 else "seal"},
        )
        if clock is not None:
            clock.advance(timedelta(microseconds=7))


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    migrations.upgrade(database)
    yield database
    database.dispose()


# --- normal operation ----------------------------------------------------------


def test_append_tail_checkpoints_and_verify(db, signer):
    clock = FakeClock()
    log = AuditLog(db, clock, signer=signer, verifier=signer.verifier(), checkpoint_every=EVERY)
    assert log.verify().ok and log.verify().records == 0
    fill(log, clock)
    tail = log.tail(3)
    assert [e.seq for e in tail] == [10, 11, 12]
    assert tail[-1].details == {"i": 12, "note": "seal"}
    assert tail[-1].time == "2026-01-01T00:00:00.000077Z"
    assert tail[0].prev_hash == log.tail(4)[0].hash
    assert [c.seq for c in log.checkpoints()] == [4, 8, 12]
    report = log.verify()
    assert report.ok, report.problem
    assert (report.records, report.checkpoints, report.head_seq) == (12, 3, 12)
    assert report.signatures_checked
    report.raise_if_broken()


def test_checkpoint_on_demand(db, signer):
    log = open_log(db, signer)
    assert log.checkpoint() is None  # nothing to sign yet
    fill(log, n=5)
    cp = log.checkpoint()
    assert cp is not None and cp.seq == 5 and cp.hash == log.tail(1)[0].hash
    assert log.checkpoint() == cp  # idempotent at the same head
    assert [c.seq for c in log.checkpoints()] == [4, 5]
    assert log.verify().checkpoints == 2
    with pytest.raises(ConfigurationError):
        AuditLog(db, FakeClock()).checkpoint()


def test_secrets_and_bad_fields_write_nothing(db, signer):
    log = open_log(db, signer)
    with pytest.raises(AuditRecordRefused):
        log.append("alice", "key.import", details={"private_key": "hunter2"})
    with pytest.raises(AuditRecordRefused):
        log.append("alice", "key.import", outcome="maybe")
    with pytest.raises(AuditRecordRefused):
        log.append("", "key.import")
    with pytest.raises(AuditRecordRefused):
        log.append("alice", "key.import", target="t" * 501)
    assert log.tail(10) == []
    assert log.append("alice", "key.import").seq == 1


def test_verify_pages_through_batches_with_progress(db, signer):
    log = open_log(db, signer, batch_size=5)
    fill(log)
    seen: list[tuple[int, int]] = []
    assert log.verify(progress=lambda done, total: seen.append((done, total))).ok
    assert seen == [(5, 12), (10, 12), (12, 12)]


def test_signatures_unchecked_without_verifier_and_untrusted_key_fails(db, signer):
    fill(open_log(db, signer))
    report = AuditLog(db, FakeClock()).verify()
    assert report.ok and not report.signatures_checked
    stranger = SM2CheckpointVerifier.from_public_keys([SM2PrivateKey.generate().public_key()])
    report = AuditLog(db, FakeClock(), verifier=stranger).verify()
    assert report.problem is not None
    assert (report.problem.seq, report.problem.fault) == (4, Fault.CHECKPOINT_SIGNATURE)


def test_append_refuses_to_fork_when_head_was_rewound(db, signer):
    log = open_log(db, signer)
    fill(log, n=3)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET seq = 1"))
    with pytest.raises(AuditChainBroken):
        log.append("alice", "key.sign")
    assert [e.seq for e in log.tail(5)] == [1, 2, 3]


# --- tampering -----------------------------------------------------------------
# One pristine log per database for the whole module; each test tampers with it in SQL
# and the fixture puts the pristine rows back afterwards.


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pristine(request, tmp_path_factory, signer):
    admin = name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'trust.db'}"
    else:
        name = f"trust_test_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin_engine()
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except Exception as exc:  # noqa: BLE001
            admin.dispose()
            need_service("postgresql", str(exc).splitlines()[0])
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    database = Database(url)
    migrations.upgrade(database)
    log = open_log(database, signer)
    fill(log)
    with database.engine.connect() as conn:
        snapshot = {t: [dict(r._mapping) for r in conn.execute(select(t))] for t in _TABLES}
    yield database, log, snapshot
    database.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


_TABLES = (audit_record, audit_head, audit_checkpoint)


@pytest.fixture
def chain(pristine):
    database, log, snapshot = pristine
    yield database, log
    with database.engine.begin() as conn:
        for table in _TABLES:
            conn.execute(delete(table))
            conn.execute(insert(table), snapshot[table])


def sql(database: Database, statement: str, **params) -> None:
    with database.engine.begin() as conn:
        conn.execute(text(statement), params)


def row(database: Database, seq: int) -> dict:
    with database.engine.connect() as conn:
        return dict(
            conn.execute(select(audit_record).where(audit_record.c.seq == seq)).one()._mapping
        )


def flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


def assert_broken_at(log: AuditLog, seq: int, fault: Fault) -> None:
    report = log.verify()
    assert report.problem is not None, "tampering went unnoticed"
    assert (report.problem.seq, report.problem.fault) == (seq, fault), str(report.problem)
    with pytest.raises(AuditChainBroken) as err:
        report.raise_if_broken()
    assert err.value.extra["seq"] == seq
    assert f"sequence {seq}" in str(err.value)


def test_pristine_log_verifies(chain):
    _db, log = chain
    report = log.verify()
    assert report.ok and report.records == RECORDS and report.checkpoints == 3


_FIELD_TAMPERS = {
    "recorded_at": (lambda r: "2026-01-01T00:00:00.000001Z", Fault.ALTERED),
    "actor": (lambda r: "mallory", Fault.ALTERED),
    "action": (lambda r: "key.delete", Fault.ALTERED),
    "target": (lambda r: "key/evil", Fault.ALTERED),
    "outcome": (lambda r: "denied", Fault.ALTERED),
    "request_id": (lambda r: "req-evil", Fault.ALTERED),
    "details": (lambda r: '{"i":-1}', Fault.ALTERED),
    "details ": (lambda r: r["details"].replace(",", ", "), Fault.ALTERED),  # same meaning
    "hash": (lambda r: flip(r["hash"]), Fault.ALTERED),
    "prev_hash": (lambda r: flip(r["prev_hash"]), Fault.LINK_BROKEN),
    "seq": (lambda r: 1000, Fault.MISSING),
}


@pytest.mark.parametrize("seq", [1, 6, 8, 12], ids=lambda s: f"record{s}")
@pytest.mark.parametrize("field", list(_FIELD_TAMPERS))
def test_altering_any_field_of_a_record_is_named(chain, field, seq):
    database, log = chain
    new_value, fault = _FIELD_TAMPERS[field]
    column = field.strip()
    sql(
        database,
        f"UPDATE audit_record SET {column} = :v WHERE seq = :s",
        v=new_value(row(database, seq)),
        s=seq,
    )
    assert_broken_at(log, seq, fault)


@pytest.mark.parametrize("seq", [1, 6, 8, 12])
def test_deleting_a_record_is_named(chain, seq):
    database, log = chain
    sql(database, "DELETE FROM audit_record WHERE seq = :s", s=seq)
    assert_broken_at(log, seq, Fault.MISSING)


@pytest.mark.parametrize("a,b", [(1, 2), (5, 9), (11, 12)])
def test_swapping_two_records_is_named(chain, a, b):
    database, log = chain
    sql(database, "UPDATE audit_record SET seq = -1 WHERE seq = :a", a=a)
    sql(database, "UPDATE audit_record SET seq = :a WHERE seq = :b", a=a, b=b)
    sql(database, "UPDATE audit_record SET seq = :b WHERE seq = -1", b=b)
    assert_broken_at(log, a, Fault.LINK_BROKEN)


def forged(database: Database, seq: int, prev_hash: bytes) -> dict:
    """A record an attacker builds with the public algorithm: it chains correctly from prev."""
    fields = dict(
        seq=seq,
        time="2026-01-01T00:00:00.000000Z",
        actor="mallory",
        action="key.export",
        target="key/1",
        outcome="success",
        request_id=None,
        details={},
    )
    digest = chain_hash(prev_hash, record_encoding(**fields))
    fields["recorded_at"] = fields.pop("time")
    return {**fields, "details": "{}", "prev_hash": prev_hash, "hash": digest}


def test_forged_record_past_the_head_is_named(chain):
    database, log = chain
    with database.engine.begin() as conn:
        conn.execute(insert(audit_record), [forged(database, 13, row(database, 12)["hash"])])
    assert_broken_at(log, 13, Fault.UNEXPECTED)


def test_forged_record_with_a_bad_hash_is_named(chain):
    database, log = chain
    record = forged(database, 13, row(database, 12)["hash"])
    with database.engine.begin() as conn:
        conn.execute(insert(audit_record), [{**record, "hash": flip(record["hash"])}])
        conn.execute(text("UPDATE audit_head SET seq = 13, hash = :h"), {"h": flip(record["hash"])})
    assert_broken_at(log, 13, Fault.ALTERED)


def test_forged_record_inserted_midway_breaks_the_next_link(chain):
    # A well-forged record at 6 (records 6.. renumbered to make room) chains correctly
    # itself; the break shows at the displaced record, whose prev_hash no longer fits.
    database, log = chain
    record = forged(database, 6, row(database, 5)["hash"])
    sql(database, "UPDATE audit_record SET seq = seq + 1000 WHERE seq >= 6")
    sql(database, "UPDATE audit_record SET seq = seq - 999 WHERE seq >= 1000")
    with database.engine.begin() as conn:
        conn.execute(insert(audit_record), [record])
    sql(database, "UPDATE audit_head SET seq = 13")
    assert_broken_at(log, 7, Fault.LINK_BROKEN)
    assert "record 6" in log.verify().problem.message


def test_rewriting_the_chain_with_fresh_hashes_is_caught_by_the_next_checkpoint(chain):
    database, log = chain
    prev = row(database, 5)["hash"]
    with database.engine.begin() as conn:
        for seq in range(6, RECORDS + 1):
            r = row(database, seq)
            actor = "mallory" if seq == 6 else r["actor"]
            digest = chain_hash(
                prev,
                record_encoding(
                    seq=seq,
                    time=r["recorded_at"],
                    actor=actor,
                    action=r["action"],
                    target=r["target"],
                    outcome=r["outcome"],
                    request_id=r["request_id"],
                    details=json.loads(r["details"]),
                ),
            )
            conn.execute(
                text(
                    "UPDATE audit_record SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"a": actor, "p": prev, "h": digest, "s": seq},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert_broken_at(log, 8, Fault.CHECKPOINT_MISMATCH)
    assert "records 5..8" in log.verify().problem.message


def test_truncating_the_tail_is_caught_by_a_checkpoint(chain):
    database, log = chain
    sql(database, "DELETE FROM audit_record WHERE seq > 9")
    sql(database, "UPDATE audit_head SET seq = 9, hash = :h", h=row(database, 9)["hash"])
    assert_broken_at(log, 10, Fault.MISSING)


def test_truncating_the_tail_is_caught_by_the_head(chain):
    database, log = chain
    sql(database, "DELETE FROM audit_record WHERE seq > 9")
    assert_broken_at(log, 10, Fault.MISSING)


def test_rewinding_the_head_is_named(chain):
    database, log = chain
    sql(database, "UPDATE audit_head SET seq = 10, hash = :h", h=row(database, 10)["hash"])
    assert_broken_at(log, 11, Fault.UNEXPECTED)
    sql(database, "UPDATE audit_head SET seq = 12, hash = :h", h=bytes(32))
    assert_broken_at(log, 12, Fault.HEAD_MISMATCH)


_CHECKPOINT_TAMPERS = {
    "hash": (lambda c: flip(c["hash"]), 8, Fault.CHECKPOINT_MISMATCH),
    "signature": (lambda c: flip(c["signature"]), 8, Fault.CHECKPOINT_SIGNATURE),
    "created_at": (lambda c: "2027-01-01T00:00:00.000000Z", 8, Fault.CHECKPOINT_SIGNATURE),
    "key_id": (lambda c: "another-key", 8, Fault.CHECKPOINT_SIGNATURE),
    "algorithm": (lambda c: "sm3_rsa", 8, Fault.CHECKPOINT_SIGNATURE),
    "seq": (lambda c: 7, 7, Fault.CHECKPOINT_MISMATCH),
}


@pytest.mark.parametrize("field", list(_CHECKPOINT_TAMPERS))
def test_altering_a_checkpoint_is_named(chain, field):
    database, log = chain
    new_value, seq, fault = _CHECKPOINT_TAMPERS[field]
    with database.engine.connect() as conn:
        cp = dict(
            conn.execute(select(audit_checkpoint).where(audit_checkpoint.c.seq == 8)).one()._mapping
        )
    sql(database, f"UPDATE audit_checkpoint SET {field} = :v WHERE seq = 8", v=new_value(cp))
    assert_broken_at(log, seq, fault)


def test_checkpoint_moved_past_the_end_is_named(chain):
    database, log = chain
    sql(database, "UPDATE audit_checkpoint SET seq = 99 WHERE seq = 12")
    assert_broken_at(log, 13, Fault.MISSING)
