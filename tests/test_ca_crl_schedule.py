"""Scheduled CRLs with a FakeClock: issued when due (overlap before nextUpdate), not before,
by one holder of the coordination lock; the app's lifespan runs the schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl as asn1_crl

from ca.crl_schedule import LOCK_NAME, CrlSchedule
from ca.service import CreateCaRequest
from tests.api_support import make_env as make_api_env
from tests.ca_support import hierarchy, make_env
from trust.clock import FakeClock
from trust.coordination.memory import MemoryCoordination
from trust.keys import KeyAlgorithm

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _number(der: bytes) -> int:
    extensions = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["crl_extensions"]
    return next(e["extn_value"].native for e in extensions if e["extn_id"].native == "crl_number")


def test_crls_issued_when_due_and_only_then(sqlite_url: str) -> None:
    clock = FakeClock(START)
    env = make_env(sqlite_url, clock)  # CRLs valid 24 h
    root, sub = hierarchy(env, KeyAlgorithm.SM2)
    coordination = MemoryCoordination(clock)
    schedule = CrlSchedule(env.ca, coordination, overlap=timedelta(hours=6))

    assert sorted(schedule.run_once()) == sorted([root.id, sub.id])  # none yet: all due
    first = env.store.get_authority(sub.id).crl
    assert first is not None
    assert schedule.run_once() == []  # fresh

    clock.advance(timedelta(hours=17, minutes=59))  # 6 h + 1 min before nextUpdate
    assert schedule.run_once() == []
    clock.advance(timedelta(minutes=2))  # inside the overlap: re-signed
    assert sorted(schedule.run_once()) == sorted([root.id, sub.id])
    second = env.store.get_authority(sub.id).crl
    assert second is not None and _number(second) == _number(first) + 1
    tbs = asn1_crl.CertificateList.load(second)["tbs_cert_list"]
    assert tbs["this_update"].native == clock.now().replace(microsecond=0)
    assert tbs["next_update"].native == clock.now().replace(microsecond=0) + timedelta(hours=24)

    # A new CA has no CRL: the next run signs its first one, and only that.
    env.ca.create_ca(CreateCaRequest("其他根CA", KeyAlgorithm.ECDSA_P256))
    assert len(schedule.run_once()) == 1  # only the new CA's first CRL


def test_one_issuer_at_a_time(sqlite_url: str) -> None:
    clock = FakeClock(START)
    env = make_env(sqlite_url, clock)
    hierarchy(env, KeyAlgorithm.ECDSA_P256)
    coordination = MemoryCoordination(clock)
    schedule = CrlSchedule(env.ca, coordination, overlap=timedelta(hours=6))
    with coordination.lock(LOCK_NAME, ttl=60, wait_timeout=1):  # another worker is at it
        assert schedule.run_once() == []
    assert len(schedule.run_once()) == 2


def test_app_lifespan_runs_the_schedule(tmp_path: Path) -> None:
    env = make_api_env(tmp_path, ca_crl_schedule_seconds=0.2)
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    ca = env.app.state.services.ca()
    ca.create_ca(CreateCaRequest("Schedule Root", KeyAlgorithm.ECDSA_P256))
    with env.client:  # runs the lifespan
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ca.crl_due():
            time.sleep(0.2)
        assert ca.crl_due() == []
