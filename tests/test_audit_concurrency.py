"""Several processes appending at once extend one unbroken chain."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from trust import migrations
from trust.audit import AuditLog, SM2CheckpointSigner
from trust.audit.schema import audit_record
from trust.clock import SystemClock
from trust.db import Database
from trust.keys import SM2PrivateKey

CHECKPOINT_EVERY = 100


def _append_many(url: str, scalar: bytes, worker: int, count: int, start) -> None:  # type: ignore[no-untyped-def]
    db = Database(url)
    signer = SM2CheckpointSigner(SM2PrivateKey.from_scalar(scalar))
    log = AuditLog(db, SystemClock(), signer=signer, checkpoint_every=CHECKPOINT_EVERY)
    start.wait()
    try:
        for i in range(count):
            log.append(f"worker{worker}", "test.append", target=str(i), details={"i": i})
    finally:
        db.dispose()


def run_concurrently(url: str, workers: int, each: int) -> None:
    db = Database(url)
    try:
        migrations.upgrade(db)
    finally:
        db.dispose()
    key = SM2PrivateKey.generate()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_append_many, args=(url, key.scalar(), w, each, start))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    db = Database(url)
    try:
        log = AuditLog(db, SystemClock(), verifier=SM2CheckpointSigner(key).verifier())
        start.set()
        # Verifying while appends run must see a consistent snapshot, never a false break.
        while any(p.is_alive() for p in procs):
            report = log.verify()
            assert report.ok, report.problem
            time.sleep(0.5)
        for p in procs:
            p.join(timeout=120)
        assert [p.exitcode for p in procs] == [0] * workers

        report = log.verify()
        assert report.ok, report.problem
        assert report.records == workers * each
        assert report.checkpoints == workers * each // CHECKPOINT_EVERY
        with db.engine.connect() as conn:
            per_worker = Counter(
                dict(
                    conn.execute(select(audit_record.c.actor, func.count()).group_by("actor")).all()
                )
            )
        assert per_worker == {f"worker{w}": each for w in range(workers)}
    finally:
        db.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_append_2000_records_to_postgres(postgres_url):
    run_concurrently(postgres_url, workers=4, each=500)


def test_four_processes_append_to_sqlite(sqlite_url):
    run_concurrently(sqlite_url, workers=4, each=50)
