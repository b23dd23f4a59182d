"""TSA units in the store: made once, rotated without downtime (a worker that has not yet
reloaded keeps issuing valid tokens, and picks up the new generation by itself), every
change audited; the flag-file clock health."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from api.deps import Services
from tests.api_support import make_env
from tests.tsa_support import provision_defaults, request
from timestamp import (
    FlagFileClockHealth,
    SqlTokenLog,
    TimestampAuthority,
    parse_response,
    verify_token,
)
from timestamp.provision import ensure_default_units
from timestamp.registry import StoredUnits
from trust.audit.schema import audit_record
from trust.errors import Conflict, NotFound

DATA = b"rotation"


@pytest.fixture
def services(tmp_path: Path) -> Services:
    built = make_env(tmp_path, tsa_unit_refresh_seconds=0.05).app.state.services
    assert isinstance(built, Services)
    provision_defaults(built)
    return built


def _signer_cert(reply: bytes) -> bytes:
    token = parse_response(reply).token
    assert token is not None
    result = verify_token(token, data=DATA)
    assert result.ok, result.problems
    assert result.signer_certificate is not None
    return result.signer_certificate.dump()


def test_default_units_are_made_once(services: Services) -> None:
    again = ensure_default_units(services.tsa_units(), services.ca(), services.settings)
    assert [(r.name, r.generation, created) for r, created in again] == [
        ("sm2", 1, False),
        ("ecdsa", 1, False),
    ]
    keys = {r.name: services.keystore().public_key(r.key_id) for r, _ in again}
    assert {n: k.algorithm.value for n, k in keys.items()} == {"sm2": "SM2", "ecdsa": "ECDSA-P256"}


def test_rotation_by_another_process_reaches_running_workers(services: Services) -> None:
    worker = services.tsa()  # re-reads the units every 0.05 s
    first = _signer_cert(worker.respond(request(DATA), "sm2"))
    slow = TimestampAuthority(
        StoredUnits(services.tsa_units(), refresh_seconds=3600),
        SqlTokenLog(services.database),
        services.clock,
    )
    assert _signer_cert(slow.respond(request(DATA), "sm2")) == first
    # Another process (trustctl tsa rotate) with its own registry over the same store.
    other = Services(
        services.settings,
        services.database,
        services.clock,
        services.coordination,
        services.audit,
        services.auth,
    )
    rotated = other.tsa_units().rotate("sm2", actor="trustctl:test")
    # A worker that has not reloaded yet still issues valid tokens with generation 1.
    assert _signer_cert(slow.respond(request(DATA), "sm2")) == first
    time.sleep(0.1)  # past tsa_unit_refresh_seconds
    assert _signer_cert(worker.respond(request(DATA), "sm2")) == rotated.certificate
    assert _signer_cert(worker.respond(request(DATA))) == rotated.certificate
    slow.reload_units()
    assert _signer_cert(slow.respond(request(DATA), "sm2")) == rotated.certificate


def test_concurrent_rotations_conflict(services: Services) -> None:
    registry = services.tsa_units()
    current = registry.store.active("sm2")
    assert current is not None
    registry.rotate("sm2", actor="a")
    # A second rotation that still believes generation 1 is active loses.
    record = registry.store.active("sm2")
    assert record is not None
    with pytest.raises(Conflict):
        registry.store.add(record, replaces=current)


def test_unit_changes_are_audited(services: Services) -> None:
    services.tsa_units().rotate("ecdsa", actor="trustctl:alice")
    with pytest.raises(NotFound):
        services.tsa_units().rotate("nope", actor="trustctl:alice")
    with services.database.session() as s:
        rows = s.execute(
            select(
                audit_record.c.actor,
                audit_record.c.action,
                audit_record.c.target,
                audit_record.c.outcome,
            )
            .where(audit_record.c.action.like("tsa.%"))
            .order_by(audit_record.c.seq)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("tsa-service", "tsa.unit.create", "sm2", "success"),
        ("tsa-service", "tsa.unit.create", "ecdsa", "success"),
        ("trustctl:alice", "tsa.unit.rotate", "ecdsa", "success"),
        ("trustctl:alice", "tsa.unit.rotate", "nope", "failure"),
    ]


def test_flag_file_clock_health(tmp_path: Path) -> None:
    flag = tmp_path / "unsynchronised"
    health = FlagFileClockHealth(flag)
    assert health.synchronised()
    flag.touch()
    assert not health.synchronised()
