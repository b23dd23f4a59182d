"""Dual certificates with key escrow: the subscriber opens the SM2EnvelopedKey with the
pure gmssl backend and with the openssl CLI, and finds the encryption certificate's key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ca.certs import load_certificate
from ca.dual import DualIssueRequest, DualIssueResult
from ca.issue import IssueRequest
from ca.keystore_source import KeystoreKeySource
from ca.service import CertificateAuthority
from ca.store import ISSUED, RESERVED, SqlCertificateStore
from keystore.escrow import SM2EnvelopedKey, open_enveloped_key
from keystore.kek.local import LocalKek
from keystore.model import Actor, Purpose
from keystore.service import KeyStore
from tests.ca_support import URLS, CaEnv, hierarchy, make_env, python_csr, run_openssl, write
from trust import migrations
from trust.audit import AuditLog
from trust.clock import SystemClock
from trust.db import Database
from trust.errors import (
    CertificateNotEscrowed,
    Conflict,
    DecryptionFailed,
    EscrowRecipientInvalid,
    Forbidden,
    ProfileKeyNotAllowed,
    StorageUnavailable,
)
from trust.keys import KeyAlgorithm, PrivateKey, generate
from trust.keys.sm2 import SM2PrivateKey
from trust.sm2.pure import PureBackend

SUBJECT = {"country_name": "CN", "organization_name": "某市政务中心", "common_name": "王五"}


@pytest.fixture
def env(sqlite_url: str) -> CaEnv:
    return make_env(sqlite_url)


def _point(cert_der: bytes) -> bytes:
    return bytes(load_certificate(cert_der).public_key["public_key"].native)


def _open_with_pure(envelope: bytes, signing_key: SM2PrivateKey) -> SM2PrivateKey:
    pure = PureBackend()
    return open_enveloped_key(
        envelope, SM2PrivateKey.from_scalar(signing_key.scalar(), pure), backend=pure
    )


def _dual(
    env: CaEnv, key: PrivateKey, san: tuple[str, ...] | None = None
) -> tuple[str, DualIssueResult]:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    request = DualIssueRequest(sub.id, python_csr(key, SUBJECT), san=san)
    return sub.id, env.ca.issue_dual(request, actor="token:op")


def test_dual_pair_and_envelope_opened_by_the_subscriber(env: CaEnv) -> None:
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    _, result = _dual(env, key, san=("email:wangwu@example.cn",))
    signing = load_certificate(result.signing.certificate_der)
    encryption = load_certificate(result.encryption.certificate_der)
    assert signing.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert encryption.key_usage_value.native == {
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
    }
    assert encryption.subject == signing.subject and encryption.issuer == signing.issuer
    assert encryption.subject_alt_name_value.native == ["wangwu@example.cn"]
    assert signing.public_key.dump() == key.public_bytes_spki()
    record = env.store.get(result.encryption.serial_hex)
    assert record.pair_serial == result.signing.serial_hex
    assert record.escrow_key_id == result.escrow_key_id

    envelope = result.enveloped_key_der
    opened = _open_with_pure(envelope, key)
    assert opened.public_key().point() == _point(result.encryption.certificate_der)
    # Only the signing key opens it.
    with pytest.raises(DecryptionFailed):
        _open_with_pure(envelope, generate(KeyAlgorithm.SM2))  # type: ignore[arg-type]


def test_envelope_structure_opened_with_openssl(env: CaEnv, tmp_path: Path) -> None:
    """GM/T 0009 layout checked field by field, the SM2Cipher decrypted and the scalar
    deciphered by the openssl CLI (an independent SM2 and SM4 implementation)."""
    key = generate(KeyAlgorithm.SM2)
    _, result = _dual(env, key)
    envelope = SM2EnvelopedKey.load(result.enveloped_key_der)
    assert envelope["sym_alg_id"]["algorithm"].dotted == "1.2.156.10197.1.104.1"
    assert envelope["sm2_public_key"].native == _point(result.encryption.certificate_der)
    write(tmp_path / "key.pem", key.private_bytes_pkcs8(pem=True))
    write(tmp_path / "c.der", envelope["sym_encrypted_key"].dump())
    run_openssl(
        "pkeyutl", "-decrypt", "-inkey", tmp_path / "key.pem", "-in", tmp_path / "c.der",
        "-out", tmp_path / "sym.bin",
    )  # fmt: skip
    sym = (tmp_path / "sym.bin").read_bytes()
    assert len(sym) == 16
    write(tmp_path / "d.enc", envelope["sm2_encrypted_private_key"].native)
    run_openssl(
        "enc", "-d", "-sm4-ecb", "-nopad", "-K", sym.hex(), "-in", tmp_path / "d.enc",
        "-out", tmp_path / "d.bin",
    )  # fmt: skip
    d = (tmp_path / "d.bin").read_bytes()
    point = SM2PrivateKey.from_scalar(d).public_key().point()
    assert point == _point(result.encryption.certificate_der)


def test_recovery_and_its_refusals(env: CaEnv) -> None:
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    ca_id, result = _dual(env, key)
    enc_serial = result.encryption.serial_hex
    recovered = env.ca.recover_key(enc_serial, actor="token:kadmin")
    assert recovered.recipient_serial_hex == result.signing.serial_hex
    assert recovered.enveloped_key_der != result.enveloped_key_der
    opened = _open_with_pure(recovered.enveloped_key_der, key)
    assert opened.public_key().point() == _point(result.encryption.certificate_der)

    # To the subscriber's renewed signing certificate (another good SM2 certificate).
    renewed = env.ca.renew(result.signing.serial_hex)
    again = env.ca.recover_key(enc_serial, recipient_serial_hex=renewed.serial_hex)
    assert _open_with_pure(again.enveloped_key_der, key).scalar() == opened.scalar()

    with pytest.raises(EscrowRecipientInvalid):  # an encryption certificate receives nothing
        env.ca.recover_key(enc_serial, recipient_serial_hex=enc_serial)
    with pytest.raises(CertificateNotEscrowed) as e:
        env.ca.recover_key(result.signing.serial_hex)
    assert e.value.code == "certificate_not_escrowed"
    env.ca.revoke(result.signing.serial_hex, "key_compromise")
    with pytest.raises(EscrowRecipientInvalid) as e2:
        env.ca.recover_key(enc_serial)
    assert e2.value.code == "escrow_recipient_invalid"

    ecdsa = generate(KeyAlgorithm.ECDSA_P256)
    with pytest.raises(ProfileKeyNotAllowed):
        env.ca.issue_dual(DualIssueRequest(ca_id, python_csr(ecdsa, SUBJECT)))
    ecdsa_cert = env.ca.issue(
        IssueRequest(ca_id, "person", public_key=ecdsa.public_bytes_spki(), subject=SUBJECT)
    )
    with pytest.raises(EscrowRecipientInvalid):
        env.ca.recover_key(enc_serial, recipient_serial_hex=ecdsa_cert.serial_hex)


def test_escrow_in_the_key_store_is_audited_and_guarded(database_url: str) -> None:
    db = Database(database_url)
    migrations.upgrade(db)
    clock = SystemClock()
    audit = AuditLog(db, clock)
    keystore = KeyStore(db, LocalKek(os.urandom(16), source="test"), clock=clock, audit=audit)
    ca_actor = Actor("ca-service", frozenset({"key_admin"}))
    try:
        keys = KeystoreKeySource(keystore, ca_actor)
        store = SqlCertificateStore(db)
        ca = CertificateAuthority(store, keys, clock, URLS, audit=audit, escrow=keys)
        env = CaEnv(ca, store, None, db)  # type: ignore[arg-type]
        key = generate(KeyAlgorithm.SM2)
        assert isinstance(key, SM2PrivateKey)
        _, result = _dual(env, key)
        info = keystore.get(result.escrow_key_id, ca_actor)
        assert info.purpose is Purpose.ENCRYPT and info.algorithm.value == "SM2"
        opened = _open_with_pure(result.enveloped_key_der, key)
        assert opened.public_key().point() == _point(result.encryption.certificate_der)

        recovered = ca.recover_key(result.encryption.serial_hex, actor="token:kadmin")
        assert _open_with_pure(recovered.enveloped_key_der, key).scalar() == opened.scalar()
        actions = [(r.actor, r.action, r.outcome) for r in audit.tail(20)]
        assert ("ca-service", "key.export_enveloped", "success") in actions
        assert ("token:kadmin", "key.export_enveloped", "success") in actions
        assert ("token:op", "certificate.issue_dual", "success") in actions
        assert ("token:kadmin", "certificate.recover_key", "success") in actions

        # Nobody else exports it, and signing keys are never enveloped.
        with pytest.raises(Forbidden):
            keystore.export_enveloped(
                result.escrow_key_id, key.public_bytes_spki(), Actor("token:x")
            )
        ca_key = ca.list_cas()[0].key_id
        with pytest.raises(Exception, match="not an escrowed SM2 encryption key"):
            keystore.export_enveloped(ca_key, key.public_bytes_spki(), ca_actor)
    finally:
        keystore.close()
        db.dispose()


class _Injected(StorageUnavailable):
    """A failure injected into one step of a dual issuance."""


def _fail_on_call(n: int, real: Callable[..., Any]) -> Callable[..., Any]:
    calls = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n:
            raise _Injected("injected failure")
        return real(*args, **kwargs)

    return step


@pytest.mark.parametrize(
    "step",
    [
        "generate_escrow_key",  # after the signing certificate is signed
        "encryption_signature",  # the encryption certificate's signature
        "export_enveloped",  # after both are signed
        "complete",  # the transaction that issues both
    ],
)
def test_a_failure_mid_pair_leaves_no_certificate_issued(
    env: CaEnv, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    request = DualIssueRequest(sub.id, python_csr(generate(KeyAlgorithm.SM2), SUBJECT))
    if step == "encryption_signature":  # the 2nd certificate signature of the issuing CA
        real_signer = env.keys.signer

        def signer(key_id: str) -> Any:
            found = real_signer(key_id)
            if key_id == sub.key_id:
                monkeypatch.setattr(found, "sign", failing_sign)
            return found

        failing_sign = _fail_on_call(2, lambda tbs: real_signer(sub.key_id).sign(tbs))
        monkeypatch.setattr(env.keys, "signer", signer)
    elif step == "complete":  # the second row of the one transaction fails
        real_complete = env.store.complete

        def complete(*issued: tuple[str, bytes]) -> None:
            assert len(issued) == 2
            real_complete(issued[0], (issued[1][0] + "0", issued[1][1]))

        monkeypatch.setattr(env.store, "complete", complete)
    else:
        monkeypatch.setattr(env.keys, step, _fail_on_call(1, getattr(env.keys, step)))
    with pytest.raises((_Injected, Conflict)):
        env.ca.issue_dual(request, actor="token:op")
    records = env.store.list_certificates(ca_id=sub.id)
    assert records, "the serials drawn stay reserved (never reused)"
    assert {r.state for r in records} == {RESERVED} and all(r.der is None for r in records)
    monkeypatch.undo()
    result = env.ca.issue_dual(request, actor="token:op")  # the next attempt is unaffected
    issued = env.store.list_certificates(ca_id=sub.id, status=ISSUED)
    assert {r.serial for r in issued} == {result.signing.serial_hex, result.encryption.serial_hex}
