"""The key store service on SQLite and PostgreSQL: generation, import, public keys,
signing, verification, encryption, rotation, destruction, permissions, audit, and
no plaintext key material at rest. Shared helpers for the other test_keystore files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from keystore import (
    Actor,
    Algorithm,
    GenerateRequest,
    KeyState,
    KeyStore,
    KeystoreCheckpointSigner,
    KeystoreCheckpointVerifier,
    Purpose,
    ensure_audit_key,
    sign_checkpoints,
)
from keystore.kek.local import LocalKek
from keystore.schema import keystore_version
from trust import migrations
from trust.audit import AuditLog
from trust.audit.schema import audit_record
from trust.clock import FakeClock
from trust.db import Database
from trust.errors import (
    BadRequest,
    DecryptionFailed,
    DestructionNotScheduled,
    Forbidden,
    InvalidSignature,
    KeyDestroyed,
    KeyDestructionNeedsDeactivation,
    KeyExpired,
    KeyNotActive,
    KeyNotFound,
    KeyPurposeMismatch,
    KeySuspended,
)
from trust.keys import (
    KeyAlgorithm,
    PrivateKey,
    SM2PrivateKey,
    SM2PublicKey,
    generate,
    load_public_key,
)
from trust.sm3 import sm3

ADMIN = Actor("admin-1", frozenset({"key_admin"}))
APP = Actor("app-1")
STRANGER = Actor("stranger")


@dataclass
class Env:
    db: Database
    store: KeyStore
    audit: AuditLog
    clock: FakeClock
    kek: LocalKek


def open_env(url: str, kek: LocalKek | None = None, **kwargs) -> Env:  # type: ignore[no-untyped-def]
    db = Database(url)
    migrations.upgrade(db)
    clock = kwargs.pop("clock", None) or FakeClock()
    kek = kek or LocalKek(os.urandom(16), source="test")
    audit = AuditLog(db, clock)
    store = KeyStore(db, kek, clock=clock, audit=audit, **kwargs)
    return Env(db, store, audit, clock, kek)


@pytest.fixture
def env(database_url: str) -> Iterator[Env]:
    e = open_env(database_url)
    yield e
    e.store.close()
    e.db.dispose()


def request(
    algorithm: Algorithm = Algorithm.SM2, purpose: Purpose = Purpose.SIGN, **kw: Any
) -> GenerateRequest:
    kw.setdefault("permitted_principals", frozenset({APP.id}))
    return GenerateRequest(label="test key", algorithm=algorithm, purpose=purpose, **kw)


def actions(e: Env) -> list[tuple[str, str, str | None, str]]:
    return [(r.actor, r.action, r.target, r.outcome) for r in e.audit.tail(10_000)]


# --- generation, public keys, sign/verify ----------------------------------------

SIGNING = [Algorithm.SM2, Algorithm.ECDSA_P256, Algorithm.ECDSA_P384, Algorithm.RSA_2048]


@pytest.mark.parametrize("algorithm", SIGNING)
def test_generate_sign_verify(env: Env, algorithm: Algorithm) -> None:
    info = env.store.generate(request(algorithm), ADMIN)
    assert info.state is KeyState.ACTIVE and info.primary_version == 1 and not info.imported
    assert info.owner == ADMIN.id
    pub = env.store.public_key(info.id)
    public = load_public_key(pub.spki_der)
    assert load_public_key(pub.spki_pem) == public
    assert public.fingerprint() == info.versions[0].fingerprint
    result = env.store.sign(info.id, b"hello", APP)
    public.verify(result.signature, b"hello")
    assert env.store.verify(info.id, b"hello", result.signature, APP).version == 1
    with pytest.raises(InvalidSignature):
        env.store.verify(info.id, b"other", result.signature, APP)


def test_sm2_signer_id_and_prehashed(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    pub = env.store.public_key(info.id)
    public = load_public_key(pub.spki_der)
    assert isinstance(public, SM2PublicKey) and pub.raw == public.point()
    sid = b"alice@example.cn"
    sig = env.store.sign(info.id, b"msg", APP, signer_id=sid).signature
    public.verify(sig, b"msg", signer_id=sid)
    with pytest.raises(InvalidSignature):
        public.verify(sig, b"msg")
    env.store.verify(info.id, b"msg", sig, APP, signer_id=sid)
    e = bytes(range(32))
    sig = env.store.sign(info.id, e, APP, prehashed=True).signature
    public.verify_digest(sig, e)
    env.store.verify(info.id, e, sig, APP, prehashed=True)


def test_import_needs_flag_and_is_marked(env: Env) -> None:
    key = generate(KeyAlgorithm.SM2)
    pkcs8 = key.private_bytes_pkcs8()
    with pytest.raises(BadRequest):
        env.store.import_key(request(), pkcs8, ADMIN)
    with pytest.raises(BadRequest):
        env.store.import_key(request(Algorithm.ECDSA_P256), pkcs8, ADMIN, allow_import=True)
    info = env.store.import_key(
        request(), key.private_bytes_pkcs8(pem=True), ADMIN, allow_import=True
    )
    assert info.imported
    assert env.store.public_key(info.id).spki_der == key.public_bytes_spki()
    key.public_key().verify(env.store.sign(info.id, b"m", APP).signature, b"m")


@pytest.mark.parametrize("algorithm", [Algorithm.SM2, Algorithm.RSA_2048, Algorithm.SM4])
def test_encrypt_decrypt_across_rotation(env: Env, algorithm: Algorithm) -> None:
    info = env.store.generate(request(algorithm, Purpose.ENCRYPT), ADMIN)
    old = env.store.encrypt(info.id, b"secret data", APP)
    env.store.rotate(info.id, ADMIN)
    new = env.store.encrypt(info.id, b"more data", APP)
    assert env.store.decrypt(info.id, old, APP) == b"secret data"
    assert env.store.decrypt(info.id, new, APP) == b"more data"
    with pytest.raises(DecryptionFailed):
        env.store.decrypt(info.id, new[:-1] + bytes([new[-1] ^ 1]), APP)
    with pytest.raises(KeyPurposeMismatch):
        env.store.sign(info.id, b"x", APP)


def test_purpose_checks(env: Env) -> None:
    with pytest.raises(KeyPurposeMismatch):
        env.store.generate(request(Algorithm.ECDSA_P256, Purpose.ENCRYPT), ADMIN)
    with pytest.raises(KeyPurposeMismatch):
        env.store.generate(request(Algorithm.SM4, Purpose.SIGN), ADMIN)
    info = env.store.generate(request(), ADMIN)
    with pytest.raises(KeyPurposeMismatch):
        env.store.encrypt(info.id, b"x", APP)
    with pytest.raises(KeyNotFound):
        env.store.sign("key_nope", b"x", APP)


# --- rotation, states, destruction ------------------------------------------------


def test_rotation_keeps_old_versions_verifying(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    sigs = [env.store.sign(info.id, b"m", APP)]
    for _ in range(3):
        env.store.rotate(info.id, ADMIN)
        sigs.append(env.store.sign(info.id, b"m", APP))
    assert [s.version for s in sigs] == [1, 2, 3, 4]
    for s in sigs:
        assert env.store.verify(info.id, b"m", s.signature, APP).version == s.version
        assert env.store.verify(info.id, b"m", s.signature, APP, version=s.version)
    assert len({env.store.public_key(info.id, v).spki_der for v in (1, 2, 3, 4)}) == 4


def test_rotate_due_follows_rotation_period(env: Env) -> None:
    due = env.store.generate(request(rotation_period=timedelta(days=30)), ADMIN)
    never = env.store.generate(request(), ADMIN)
    assert env.store.rotate_due() == []
    env.clock.advance(timedelta(days=31))
    assert env.store.rotate_due() == [due.id]
    assert env.store.get(due.id, ADMIN).primary_version == 2
    assert env.store.get(never.id, ADMIN).primary_version == 1
    assert env.store.rotate_due() == []


def test_use_refused_by_state_and_validity(env: Env) -> None:
    info = env.store.generate(request(expires_at=env.clock.now() + timedelta(days=1)), ADMIN)
    env.store.suspend(info.id, ADMIN)
    with pytest.raises(KeySuspended):
        env.store.sign(info.id, b"m", APP)
    env.store.resume(info.id, ADMIN)
    env.store.sign(info.id, b"m", APP)
    env.clock.advance(timedelta(days=2))
    with pytest.raises(KeyExpired):
        env.store.sign(info.id, b"m", APP)
    later = env.store.generate(request(activation_at=env.clock.now() + timedelta(hours=1)), ADMIN)
    assert later.state is KeyState.PRE_ACTIVATION
    with pytest.raises(KeyNotActive):
        env.store.sign(later.id, b"m", APP)


def test_compromise_records_time_and_stops_signing(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    sig = env.store.sign(info.id, b"m", APP).signature
    when = env.clock.now() - timedelta(hours=3)
    out = env.store.mark_compromised(info.id, ADMIN, compromised_at=when)
    assert out.state is KeyState.COMPROMISED and out.compromised_at == when
    with pytest.raises(KeyNotActive):
        env.store.sign(info.id, b"m", APP)
    env.store.verify(info.id, b"m", sig, APP)  # processing with caution stays possible


def test_state_change_reason_is_stored_and_audited(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    assert env.store.suspend(info.id, ADMIN, reason="under review").state_reason == ("under review")
    assert env.audit.tail(1)[0].details == {"from": "active", "reason": "under review"}
    assert env.store.resume(info.id, ADMIN).state_reason is None  # the latest change's
    for bad in ("", " ", "tab\there", "x" * 501):
        with pytest.raises(BadRequest):
            env.store.deactivate(info.id, ADMIN, reason=bad)
    assert env.store.get(info.id, ADMIN).state is KeyState.ACTIVE
    out = env.store.mark_compromised(info.id, ADMIN, reason="HSM backup tape lost")
    assert out.state_reason == "HSM backup tape lost"
    assert env.audit.tail(1)[0].details["reason"] == "HSM backup tape lost"


def test_a_version_that_never_existed_is_not_found(env: Env) -> None:
    signing = env.store.generate(request(), ADMIN)
    sig = env.store.sign(signing.id, b"m", APP).signature
    with pytest.raises(KeyNotFound):
        env.store.verify(signing.id, b"m", sig, APP, version=2)
    sealed = env.store.generate(request(Algorithm.SM2, Purpose.ENCRYPT), ADMIN)
    ciphertext = env.store.encrypt(sealed.id, b"p", APP)
    with pytest.raises(KeyNotFound):
        env.store.decrypt(sealed.id, ciphertext, APP, version=3)
    assert env.store.decrypt(sealed.id, ciphertext, APP, version=1) == b"p"


def test_destruction_waits_erases_material_keeps_public_keys(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    env.store.rotate(info.id, ADMIN)
    with pytest.raises(KeyDestructionNeedsDeactivation):
        env.store.schedule_destruction(info.id, ADMIN)
    env.store.deactivate(info.id, ADMIN)
    with pytest.raises(DestructionNotScheduled):
        env.store.cancel_destruction(info.id, ADMIN)
    env.store.schedule_destruction(info.id, ADMIN, wait=timedelta(days=1))
    env.store.cancel_destruction(info.id, ADMIN)
    env.store.schedule_destruction(info.id, ADMIN, wait=timedelta(days=1))
    assert env.store.destroy_due() == []
    env.clock.advance(timedelta(days=1, seconds=1))
    assert env.store.destroy_due() == [info.id]
    out = env.store.get(info.id, ADMIN)
    assert out.state is KeyState.DESTROYED and out.destroyed_at is not None
    with env.db.session() as s:
        rows = s.execute(
            select(keystore_version.c.sealed_key, keystore_version.c.wrapped_data_key).where(
                keystore_version.c.key_id == info.id
            )
        ).all()
    assert rows and all(r.sealed_key is None and r.wrapped_data_key is None for r in rows)
    assert env.store.public_key(info.id, 1).spki_der and env.store.public_key(info.id, 2).spki_der
    with pytest.raises(KeyDestroyed):
        env.store.sign(info.id, b"m", APP)
    with pytest.raises(KeyDestroyed):
        env.store.verify(info.id, b"m", b"x", APP)


def test_default_destruction_wait(database_url: str) -> None:
    e = open_env(database_url, destruction_wait=timedelta(hours=2))
    info = e.store.generate(request(activation_at=e.clock.now() + timedelta(days=1)), ADMIN)
    e.store.schedule_destruction(info.id, ADMIN)
    e.clock.advance(timedelta(hours=1))
    assert e.store.destroy_due() == []
    e.clock.advance(timedelta(hours=1))
    assert e.store.destroy_due() == [info.id]
    e.db.dispose()


# --- permissions and audit --------------------------------------------------------


def test_per_key_permissions(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    with pytest.raises(Forbidden):
        env.store.sign(info.id, b"m", STRANGER)
    granted = Actor("other", key_grants=frozenset({info.id}))
    env.store.sign(info.id, b"m", granted)
    with pytest.raises(Forbidden):
        env.store.generate(request(), APP)
    with pytest.raises(Forbidden):
        env.store.rotate(info.id, APP)
    with pytest.raises(Forbidden):
        env.store.suspend(info.id, STRANGER)
    with pytest.raises(Forbidden):
        env.store.get(info.id, STRANGER)
    assert ("stranger", "key.sign", info.id, "denied") in actions(env)
    assert [k.id for k in env.store.list_keys(STRANGER)] == []
    assert [k.id for k in env.store.list_keys(APP)] == [info.id]


def test_every_operation_is_audited(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    sig = env.store.sign(info.id, b"payload", APP)
    env.store.verify(info.id, b"payload", sig.signature, APP)
    env.store.rotate(info.id, ADMIN)
    env.store.suspend(info.id, ADMIN)
    env.store.resume(info.id, ADMIN)
    env.store.deactivate(info.id, ADMIN)
    env.store.mark_compromised(info.id, ADMIN)
    env.store.schedule_destruction(info.id, ADMIN, wait=timedelta(0))
    env.store.destroy_due()
    got = [(a, act) for a, act, target, _ in actions(env) if target == info.id]
    assert got == [
        ("admin-1", "key.generate"),
        ("app-1", "key.sign"),
        ("app-1", "key.verify"),
        ("admin-1", "key.rotate"),
        ("admin-1", "key.suspend"),
        ("admin-1", "key.resume"),
        ("admin-1", "key.deactivate"),
        ("admin-1", "key.compromise"),
        ("admin-1", "key.destroy.schedule"),
        ("system:keystore", "key.destroy"),
    ]
    signed = [r for r in env.audit.tail(100) if r.action == "key.sign"][0]
    assert signed.details == {
        "version": 1,
        "digest": sm3(b"payload").hex(),
        "digest_of": "message-sm3",
    }
    assert env.audit.verify().ok


def test_checkpoint_signer_from_keystore(env: Env) -> None:
    with pytest.raises(KeyPurposeMismatch):
        KeystoreCheckpointSigner(env.store, env.store.generate(request(), ADMIN).id)
    key = env.store.generate(request(purpose=Purpose.AUDIT), ADMIN)
    signer = KeystoreCheckpointSigner(env.store, key.id)
    verifier = KeystoreCheckpointVerifier(env.store)
    log = AuditLog(env.db, env.clock, signer=signer, verifier=verifier, checkpoint_every=2)
    for i in range(3):
        log.append("u", "a", details={"i": i})
    env.store.rotate(key.id, ADMIN)  # checkpoints signed by version 1 still verify
    for i in range(3):
        log.append("u", "b", details={"i": i})
    log.append("u", "c")
    log.checkpoint()
    assert len(log.checkpoints()) >= 3
    report = log.verify()
    assert report.ok and report.signatures_checked


def test_audit_key_wiring_and_an_unusable_audit_key(env: Env) -> None:
    assert sign_checkpoints(env.store, env.audit) is None  # no audit key: nothing changes
    key_id, made = ensure_audit_key(env.store, ADMIN)
    assert made and ensure_audit_key(env.store, ADMIN) == (key_id, False)
    log = AuditLog(env.db, env.clock, checkpoint_every=2)
    assert sign_checkpoints(env.store, log) == key_id
    log.append("u", "a")
    log.append("u", "a")
    assert [c.key_id for c in log.checkpoints()] == ["keystore:" + key_id]
    # A suspended audit key must not stop the operations being audited: the record is
    # written, the periodic checkpoint skipped; an explicit one names the reason.
    env.store.suspend(key_id, ADMIN)
    log.append("u", "b")
    head = log.append("u", "b").seq
    assert head % 2 == 0 and [c.seq for c in log.checkpoints()][-1] < head
    with pytest.raises(KeySuspended):
        log.checkpoint()
    env.store.resume(key_id, ADMIN)
    assert log.checkpoint() is not None
    assert log.verify().ok


# --- nothing in the clear at rest -------------------------------------------------


def _secrets_of(key: PrivateKey) -> list[bytes]:
    """The PKCS#8 DER and, for SM2, the bare 32-byte scalar."""
    found = [key.private_bytes_pkcs8()]
    if isinstance(key, SM2PrivateKey):
        found.append(key.scalar())
    return found


def test_no_plaintext_key_material_at_rest(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    e = open_env(database_url)
    secrets: list[bytes] = []
    for algorithm in (Algorithm.SM2, Algorithm.ECDSA_P256, Algorithm.RSA_2048, Algorithm.SM4):
        purpose = Purpose.ENCRYPT if algorithm is Algorithm.SM4 else Purpose.SIGN
        info = e.store.generate(request(algorithm, purpose), ADMIN)
        e.store.rotate(info.id, ADMIN)
        entry = e.store._entry(info.id)
        for v in e.store.get(info.id, ADMIN).versions:
            secret = e.store._secret(entry, v.version)
            secrets += [secret] if isinstance(secret, bytes) else _secrets_of(secret)
        if purpose is Purpose.SIGN:
            e.store.sign(info.id, b"m", APP)
    imported = generate(KeyAlgorithm.SM2)
    e.store.import_key(request(), imported.private_bytes_pkcs8(), ADMIN, allow_import=True)
    secrets += _secrets_of(imported)
    e.store.close()
    dump = _database_bytes(e.db, tmp_path)
    e.db.dispose()
    assert len(dump) > 1000
    for secret in secrets:
        assert secret not in dump and secret.hex().encode() not in dump


def _database_bytes(db: Database, tmp_path) -> bytes:  # type: ignore[no-untyped-def]
    if db.dialect == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
        path = db.engine.url.database
        assert path
        return b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run([pg_dump, "--dbname", url], capture_output=True)
        if done.returncode == 0:
            return done.stdout
    out = []
    with db.engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for table in list(tables):
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(json.dumps([x.hex() if isinstance(x, bytes) else str(x) for x in row]))
    return "\n".join(out).encode()


def test_audit_records_hold_no_secrets(env: Env) -> None:
    info = env.store.generate(request(), ADMIN)
    env.store.sign(info.id, b"m", APP)
    text_ = json.dumps([r.to_dict() for r in env.audit.tail(100)])
    assert "PRIVATE" not in text_
    with env.db.session() as s:
        assert s.execute(select(audit_record.c.seq)).first() is not None
