"""trust/auth: token format, grants, issue/authenticate/revoke, first admin (SQLite, PostgreSQL)."""

from __future__ import annotations

import stat
import time
from datetime import timedelta

import pytest

from trust import migrations
from trust.auth import AuthService, Grant, Principal, Role
from trust.auth import tokens as fmt
from trust.auth.schema import auth_token
from trust.clock import FakeClock
from trust.db import Database
from trust.errors import BadRequest, NotFound, TokenExpired, TokenRevoked, Unauthenticated


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(database_url, clock):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    migrations.upgrade(db)
    yield AuthService(db, clock)
    db.dispose()


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    def append(self, actor, action, *, target, request_id, details, outcome="success"):  # type: ignore[no-untyped-def]
        self.records.append((actor, action, target, outcome, request_id, dict(details)))


def test_token_format_has_256_bit_secret_and_public_id() -> None:
    token = fmt.new_token(fmt.new_token_id())
    parsed = fmt.parse(token)
    assert parsed is not None and token.startswith(f"trst_{parsed.token_id}_")
    secret = token.split("_", 2)[2]
    assert len(secret) == 43  # 32 bytes, unpadded base64url
    assert fmt.parse("trst_zz_abc") is None
    assert fmt.parse(token + "x") is None
    assert fmt.hash_matches(token, fmt.token_hash(token))
    other = token[:-1] + ("A" if token[-1] != "A" else "B")  # never the token itself
    assert not fmt.hash_matches(token, fmt.token_hash(other))


def test_grant_narrowing() -> None:
    narrowed = Grant.narrowed(Role.signer, ["K1", "K2"])
    assert narrowed.resource_type == "key"
    assert narrowed.allows(Role.signer, "key", "K1")
    assert not narrowed.allows(Role.signer, "key", "K3")
    assert not narrowed.allows(Role.signer, None, None)  # narrowing never widens
    assert not narrowed.allows(Role.verifier, "key", "K1")
    broad = Grant(Role.signer)
    assert broad.allows(Role.signer, None, None) and broad.allows(Role.signer, "key", "K9")
    with pytest.raises(BadRequest):
        Grant.narrowed(Role.auditor, ["x"])
    with pytest.raises(BadRequest):
        Grant(Role.signer, "key", frozenset())
    p = Principal("abc", "", (narrowed, Grant(Role.verifier)))
    assert p.allows(frozenset({Role.verifier}))
    assert p.allows(frozenset({Role.signer}), "key", "K2")
    assert not p.allows(frozenset({Role.admin}))


def test_issue_authenticate_revoke(service: AuthService, clock: FakeClock) -> None:
    audit = RecordingAudit()
    service = AuthService(service._db, clock, audit)
    issued = service.create_token(
        [Grant.narrowed(Role.signer, ["K1"])],
        actor="cli",
        label="app",
        expires_at=clock.now() + timedelta(days=1),
        request_id="r1",
    )
    principal = service.authenticate(issued.token)
    assert principal.token_id == issued.info.id
    assert principal.grants == (Grant(Role.signer, "key", frozenset({"K1"})),)
    # Only the hash is stored.
    with service._db.session() as s:
        row = s.execute(auth_token.select()).one()
    assert issued.token.encode() not in bytes(row.secret_hash)
    assert row.last_used_at == clock.now()

    wrong = issued.token[:-2] + ("AA" if not issued.token.endswith("AA") else "BB")
    with pytest.raises(Unauthenticated) as e:
        service.authenticate(wrong)
    assert type(e.value) is Unauthenticated
    with pytest.raises(Unauthenticated):
        service.authenticate("trst_000000000000_" + "A" * 43)
    with pytest.raises(Unauthenticated):
        service.authenticate("not a token")

    service.revoke(issued.info.id, actor="cli", request_id="r2")
    again = service.revoke(issued.info.id, actor="cli")
    assert again.status(clock.now()) == "revoked"
    with pytest.raises(TokenRevoked):
        service.authenticate(issued.token)
    assert [r[1] for r in audit.records] == ["token.create", "token.revoke"]
    assert audit.records[0][4] == "r1" and audit.records[1][4] == "r2"
    assert issued.token not in repr(audit.records)
    with pytest.raises(NotFound):
        service.revoke("ffffffffffff", actor="cli")


def test_expiry(service: AuthService, clock: FakeClock) -> None:
    issued = service.create_token(
        [Grant(Role.verifier)], actor="cli", expires_at=clock.now() + timedelta(hours=1)
    )
    service.authenticate(issued.token)
    clock.advance(timedelta(hours=1))
    with pytest.raises(TokenExpired):
        service.authenticate(issued.token)
    assert service.list_tokens()[0].status(clock.now()) == "expired"
    with pytest.raises(BadRequest):
        service.create_token([Grant(Role.verifier)], actor="cli", expires_at=clock.now())
    with pytest.raises(BadRequest):
        service.create_token([], actor="cli")


def test_verified_token_cache(service: AuthService, clock: FakeClock) -> None:
    """Hits need the right secret and an unexpired token; a revocation here drops the entry
    at once, one made by another process (another AuthService) within the cache TTL."""
    here = AuthService(service._db, clock, cache_ttl=0.3)
    elsewhere = AuthService(service._db, clock)
    issued = here.create_token(
        [Grant(Role.signer)], actor="cli", expires_at=clock.now() + timedelta(hours=1)
    )
    assert here.authenticate_cached(issued.token) is None  # never verified yet
    principal = here.authenticate(issued.token)
    assert here.authenticate_cached(issued.token) == principal
    wrong = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    assert here.authenticate_cached(wrong) is None
    assert here.authenticate_cached("not a token") is None

    elsewhere.revoke(issued.info.id, actor="cli")
    assert here.authenticate_cached(issued.token) == principal  # until the entry is 0.3 s old
    time.sleep(0.35)
    assert here.authenticate_cached(issued.token) is None
    with pytest.raises(TokenRevoked):
        here.authenticate(issued.token)

    second = here.create_token(
        [Grant(Role.signer)], actor="cli", expires_at=clock.now() + timedelta(minutes=30)
    )
    here.authenticate(second.token)
    here.revoke(second.info.id, actor="cli")
    assert here.authenticate_cached(second.token) is None  # revoked here: gone at once

    third = here.create_token(
        [Grant(Role.signer)], actor="cli", expires_at=clock.now() + timedelta(seconds=30)
    )
    here.authenticate(third.token)
    clock.advance(timedelta(seconds=30))
    assert here.authenticate_cached(third.token) is None  # expired: authenticate says so
    with pytest.raises(TokenExpired):
        here.authenticate(third.token)
    off = AuthService(service._db, clock, cache_ttl=0)
    fourth = off.create_token([Grant(Role.signer)], actor="cli")
    off.authenticate(fourth.token)
    assert off.authenticate_cached(fourth.token) is None


def test_first_admin_once(service: AuthService, tmp_path, clock: FakeClock) -> None:
    path = tmp_path / "var" / "admin.token"
    assert service.ensure_first_admin(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert Role.admin in {g.role for g in service.authenticate(token).grants}
    assert not service.ensure_first_admin(path)
    assert path.read_text().strip() == token
    # Once the only admin token is revoked, init makes a new one.
    service.revoke(service.authenticate(token).token_id, actor="cli")
    assert service.ensure_first_admin(path)
    assert path.read_text().strip() != token


def test_token_operations_land_in_the_audit_log(service: AuthService, clock: FakeClock) -> None:
    from trust.audit import AuditLog

    log = AuditLog(service._db, clock)
    audited = AuthService(service._db, clock, log)
    issued = audited.create_token([Grant(Role.auditor)], actor="cli", label="a", request_id="q1")
    audited.revoke(issued.info.id, actor="cli")
    entries = log.tail(10)
    assert [(e.action, e.target, e.request_id) for e in entries] == [
        ("token.create", issued.info.id, "q1"),
        ("token.revoke", issued.info.id, None),
    ]
    assert issued.token.split("_", 2)[2] not in repr(entries)
    assert log.verify().ok
