"""TSA units in the store: made once, rotated without downtime (a worker that has not yet
reloaded keeps issuing valid tokens, and picks up the new generation by itself), every
change audited; the flag-file clock health."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from api.deps import Services
from keystore.model import Actor
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
from trust.errors import Conflict, KeyBoundToTsaUnit, NotFound, TsaPolicyInvalid

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


def test_key_store_refuses_to_rotate_a_unit_key(services: Services) -> None:
    unit = services.tsa_units().store.active("sm2")
    assert unit is not None
    admin = Actor("trustctl:bob", frozenset({"admin"}))
    with pytest.raises(KeyBoundToTsaUnit) as refused:
        services.keystore().rotate(unit.key_id, admin)
    assert "trustctl tsa rotate sm2" in refused.value.detail
    assert refused.value.extra == {"unit": "sm2"}
    assert services.keystore().public_key(unit.key_id).version == 1
    with services.database.session() as s:
        outcome = s.execute(
            select(audit_record.c.outcome, audit_record.c.details).where(
                audit_record.c.action == "key.rotate", audit_record.c.target == unit.key_id
            )
        ).one()
    assert outcome.outcome == "failure" and "key_bound_to_tsa_unit" in str(outcome.details)
    # The unit still signs with its certified key.
    _signer_cert(services.tsa().respond(request(DATA), "sm2"))

    # Once the unit is rotated, its retired key is free (no unit signs with it any more).
    services.tsa_units().rotate("sm2", actor="trustctl:bob")
    assert services.keystore().rotate(unit.key_id, admin).primary_version == 2
    current = services.tsa_units().store.active("sm2")
    assert current is not None
    with pytest.raises(KeyBoundToTsaUnit):
        services.keystore().rotate(current.key_id, admin)


def _policy_of(reply: bytes) -> str:
    token = parse_response(reply).token
    assert token is not None
    return verify_token(token, data=DATA).policy


def _refused(reply: bytes) -> set[str]:
    parsed = parse_response(reply)
    assert parsed.status == "rejection", parsed
    return set(parsed.failure_info)


def test_policy_from_settings_at_provision(tmp_path: Path) -> None:
    built = make_env(tmp_path, tsa_sm2_policy_oid="1.2.156.112233.7.1").app.state.services
    assert isinstance(built, Services)
    records = {r.name: r for r in provision_defaults(built)}
    assert records["sm2"].policy == "1.2.156.112233.7.1"
    assert records["ecdsa"].policy == "2.999.1.2"  # the documented placeholder default
    tsa = built.tsa()
    assert _policy_of(tsa.respond(request(DATA))) == "1.2.156.112233.7.1"
    assert _policy_of(tsa.respond(request(DATA, policy="1.2.156.112233.7.1"))) == (
        "1.2.156.112233.7.1"
    )
    assert _refused(tsa.respond(request(DATA, policy="2.999.1.1"))) == {"unaccepted_policy"}
    assert _refused(tsa.respond(request(DATA, policy="2.999.1.2"), "sm2")) == {"unaccepted_policy"}


def test_bad_policy_in_settings_is_refused_at_provision(tmp_path: Path) -> None:
    built = make_env(tmp_path, tsa_ecdsa_policy_oid="1.2.x").app.state.services
    assert isinstance(built, Services)
    with pytest.raises(TsaPolicyInvalid):
        provision_defaults(built)


def test_policy_change_reaches_running_workers(services: Services) -> None:
    worker = services.tsa()  # re-reads the units every 0.05 s
    assert _policy_of(worker.respond(request(DATA, policy="2.999.1.1"))) == "2.999.1.1"
    changed = services.tsa_units().set_policy("sm2", "1.2.156.112233.8.1", actor="trustctl:eve")
    assert (changed.name, changed.generation, changed.policy) == ("sm2", 1, "1.2.156.112233.8.1")
    time.sleep(0.1)
    assert _policy_of(worker.respond(request(DATA))) == "1.2.156.112233.8.1"
    assert _policy_of(worker.respond(request(DATA, policy="1.2.156.112233.8.1"))) == (
        "1.2.156.112233.8.1"
    )
    assert _refused(worker.respond(request(DATA, policy="2.999.1.1"))) == {"unaccepted_policy"}
    # Rotation keeps the policy.
    assert services.tsa_units().rotate("sm2", actor="trustctl:eve").policy == "1.2.156.112233.8.1"

    with pytest.raises(TsaPolicyInvalid):
        services.tsa_units().set_policy("sm2", "1.02.3", actor="trustctl:eve")
    with pytest.raises(NotFound):
        services.tsa_units().set_policy("nope", "1.2.3", actor="trustctl:eve")
    with services.database.session() as s:
        rows = s.execute(
            select(audit_record.c.target, audit_record.c.outcome, audit_record.c.details)
            .where(audit_record.c.action == "tsa.unit.policy")
            .order_by(audit_record.c.seq)
        ).all()
    assert [(r.target, r.outcome) for r in rows] == [
        ("sm2", "success"),
        ("sm2", "failure"),
        ("nope", "failure"),
    ]
    assert "2.999.1.1" in str(rows[0].details) and "tsa_policy_invalid" in str(rows[1].details)


def test_flag_file_clock_health(tmp_path: Path) -> None:
    flag = tmp_path / "unsynchronised"
    health = FlagFileClockHealth(flag)
    assert health.synchronised()
    flag.touch()
    assert not health.synchronised()
