"""Backup bundles: restore into an empty store reproduces public keys and working
signatures; a wrong passphrase, a damaged bundle or a non-empty store is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keystore import (
    Algorithm,
    KeyState,
    Purpose,
    create_backup,
    ensure_audit_key,
    restore_backup,
)
from tests.test_keystore import ADMIN, APP, open_env, request
from trust.errors import (
    BackupMalformed,
    BackupPassphraseInvalid,
    Forbidden,
    KeystoreNotEmpty,
)
from trust.keys import load_public_key

PASS = "correct horse battery staple"
FAST = {"scrypt_n": 2**10}  # test speed; the default cost is 2**15


def test_backup_restore_round_trip(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = open_env(f"sqlite:///{tmp_path / 'src.db'}")
    sm2 = src.store.generate(request(Algorithm.SM2), ADMIN)
    src.store.rotate(sm2.id, ADMIN)
    ec = src.store.generate(request(Algorithm.ECDSA_P256), ADMIN)
    sm4 = src.store.generate(request(Algorithm.SM4, Purpose.ENCRYPT), ADMIN)
    gone = src.store.generate(request(Algorithm.SM2), ADMIN)
    src.store.deactivate(gone.id, ADMIN)
    src.store.schedule_destruction(gone.id, ADMIN, wait=timedelta(0))
    src.store.destroy_due()
    old_sig = src.store.sign(sm2.id, b"before backup", APP).signature
    ciphertext = src.store.encrypt(sm4.id, b"data", APP)
    src.store.suspend(sm2.id, ADMIN, reason="kept apart")
    backed_up: list[tuple[int, int]] = []
    bundle = create_backup(src.store, PASS, ADMIN, progress=lambda *p: backed_up.append(p), **FAST)
    assert b"PRIVATE" not in bundle
    assert backed_up == [(n, 4) for n in range(5)]

    dst = open_env(database_url)  # another database, another master key
    restored: list[tuple[int, int]] = []
    assert (
        restore_backup(dst.store, bundle, PASS, ADMIN, progress=lambda *p: restored.append(p)) == 4
    )
    assert restored == [(n, 4) for n in range(5)]
    assert dst.store.get(sm2.id, ADMIN).state_reason == "kept apart"
    for e in (src, dst):
        e.store.resume(sm2.id, ADMIN)
    for key in (sm2, ec, gone):
        before, after = src.store.get(key.id, ADMIN), dst.store.get(key.id, ADMIN)
        assert [v.public_key_der for v in after.versions] == [
            v.public_key_der for v in before.versions
        ]
        assert (after.state, after.primary_version) == (before.state, before.primary_version)
    assert dst.store.get(gone.id, ADMIN).state is KeyState.DESTROYED
    dst.store.verify(sm2.id, b"before backup", old_sig, APP)
    for key in (sm2, ec):
        new_sig = dst.store.sign(key.id, b"after restore", APP).signature
        load_public_key(src.store.public_key(key.id).spki_der).verify(new_sig, b"after restore")
    assert dst.store.decrypt(sm4.id, ciphertext, APP) == b"data"
    with pytest.raises(KeystoreNotEmpty):
        restore_backup(dst.store, bundle, PASS, ADMIN)
    for e in (src, dst):
        e.store.close()
        e.db.dispose()


def test_wrong_passphrase_and_damage_are_clear_errors(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = open_env(sqlite_url)
    src.store.generate(request(), ADMIN)
    bundle = create_backup(src.store, PASS, ADMIN, **FAST)
    dst = open_env(f"sqlite:///{tmp_path / 'dst.db'}")
    with pytest.raises(BackupPassphraseInvalid) as caught:
        restore_backup(dst.store, bundle, "not the passphrase", ADMIN)
    assert caught.value.code == "backup_passphrase_invalid"
    with pytest.raises(BackupPassphraseInvalid):
        restore_backup(dst.store, bundle[:-1] + bytes([bundle[-1] ^ 1]), PASS, ADMIN)
    with pytest.raises(BackupMalformed):
        restore_backup(dst.store, b"not a bundle", PASS, ADMIN)
    with pytest.raises(BackupMalformed):
        restore_backup(dst.store, bundle.replace(b'"n": 1024', b'"n": 1073741824'), PASS, ADMIN)
    with pytest.raises(Forbidden):
        create_backup(src.store, PASS, APP)
    assert dst.store.list_keys(ADMIN) == []


def test_restore_beside_the_audit_key_of_a_fresh_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`trustctl init` makes an audit key: a store holding only that still takes a restore
    (the key stays, the source's audit key arrives too); any other key, or a key of the
    bundle already present, makes it refuse."""
    src = open_env(f"sqlite:///{tmp_path / 'src.db'}")
    source_audit, _ = ensure_audit_key(src.store, ADMIN)
    signing = src.store.generate(request(), ADMIN)
    bundle = create_backup(src.store, PASS, ADMIN, **FAST)
    dst = open_env(f"sqlite:///{tmp_path / 'dst.db'}")
    own_audit, _ = ensure_audit_key(dst.store, ADMIN)
    assert restore_backup(dst.store, bundle, PASS, ADMIN) == 2
    ids = {k.id for k in dst.store.list_keys(ADMIN)}
    assert ids == {own_audit, source_audit, signing.id}
    with pytest.raises(KeystoreNotEmpty):
        restore_backup(dst.store, bundle, PASS, ADMIN)
    lone = open_env(f"sqlite:///{tmp_path / 'lone.db'}")
    ensure_audit_key(lone.store, ADMIN)
    audit_only = create_backup(lone.store, PASS, ADMIN, **FAST)
    again = open_env(f"sqlite:///{tmp_path / 'again.db'}")
    assert restore_backup(again.store, audit_only, PASS, ADMIN) == 1
    with pytest.raises(KeystoreNotEmpty):  # only audit keys, but this one is there already
        restore_backup(again.store, audit_only, PASS, ADMIN)
    for e in (src, dst, lone, again):
        e.store.close()
        e.db.dispose()
