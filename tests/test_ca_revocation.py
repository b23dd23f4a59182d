"""Revocation, certificateHold and release, CRLs as openssl prints and checks them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl

from ca.certs import load_certificate
from ca.crl import RevocationReason
from ca.issue import IssueRequest
from ca.signer import verify_signature
from tests.ca_support import CaEnv, crl_pem, hierarchy, make_env, openssl_output, run_openssl, write
from trust.clock import FakeClock
from trust.errors import BadRequest, CertificateAlreadyRevoked, CertificateNotOnHold
from trust.keys import KeyAlgorithm, SM2PublicKey, generate
from trust.sm2.select import get_backend


@pytest.fixture
def env(sqlite_url: str) -> CaEnv:
    return make_env(sqlite_url)


def _issue(env: CaEnv, ca_id: str, algorithm: KeyAlgorithm = KeyAlgorithm.SM2) -> str:
    key = generate(algorithm).public_bytes_spki()
    return env.ca.issue(
        IssueRequest(ca_id, "person", public_key=key, subject={"C": "CN", "CN": "赵六"})
    ).serial_hex


def test_revoke_is_idempotent_and_hold_can_be_released(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    serial = _issue(env, sub.id)
    first = env.ca.revoke(serial, "keyCompromise")
    assert first.status == "revoked" and first.revocation_reason == "key_compromise"
    assert env.ca.revoke(serial, RevocationReason.KEY_COMPROMISE) == first
    with pytest.raises(CertificateAlreadyRevoked):
        env.ca.revoke(serial, "superseded")
    with pytest.raises(CertificateNotOnHold):
        env.ca.release_hold(serial)
    with pytest.raises(BadRequest):
        env.ca.revoke(serial, "removeFromCRL")

    held = _issue(env, sub.id)
    on_hold = env.ca.revoke(held, "certificate_hold")
    assert on_hold.status == "on_hold"
    released = env.ca.release_hold(held)
    assert released.status == "good" and released.revoked_at is None
    assert env.ca.release_hold(held) == released
    env.ca.revoke(held, "certificateHold")
    final = env.ca.revoke(held, "cessation_of_operation")
    assert final.status == "revoked" and final.revocation_reason == "cessation_of_operation"


def test_crl_numbers_and_due(sqlite_url: str) -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    env = make_env(sqlite_url, clock)
    root, sub = hierarchy(env, KeyAlgorithm.SM2)
    assert set(env.ca.crl_due()) == {root.id, sub.id}
    first = env.ca.crl(sub.id)
    second = env.ca.crl(sub.id)
    assert (first.number, second.number) == (1, 2)
    assert env.ca.current_crl(sub.id) == second.der
    assert env.ca.crl_due() == [root.id]
    clock.advance(timedelta(hours=19))
    assert sub.id in env.ca.crl_due()
    env.ca.crl(sub.id)
    # A revocation makes the stored CRL stale: the next one is made fresh.
    serial = _issue(env, sub.id)
    env.ca.revoke(serial, "superseded")
    assert sub.id in env.ca.crl_due()
    current = crl.CertificateList.load(env.ca.current_crl(sub.id))
    assert current.crl_number_value.native == 4
    assert [
        r["user_certificate"].native for r in current["tbs_cert_list"]["revoked_certificates"]
    ] == [int(serial, 16)]


@pytest.mark.openssl_cli
def test_sm2_crl_prints_and_verifies_with_both_backends(env: CaEnv, tmp_path: Path) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    revoked = _issue(env, sub.id)
    held = _issue(env, sub.id)
    env.ca.revoke(revoked, "keyCompromise")
    env.ca.revoke(held, "certificateHold")
    result = env.ca.crl(sub.id)
    text = run_openssl(
        "crl",
        "-in",
        write(tmp_path / "crl.pem", crl_pem(result.der)),
        "-text",
        "-noout",
        "-nameopt",
        "utf8",
    )
    assert "Version 2 (0x1)" in text
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert f"Issuer: C=CN, O=Trust Service, CN={sub.name}" in text
    assert "Last Update:" in text and "Next Update:" in text
    assert "X509v3 CRL Number: \n                1" in text
    assert "X509v3 Authority Key Identifier" in text
    assert f"Serial Number: {revoked.upper().zfill(32)}" in text
    assert "Key Compromise" in text and "Certificate Hold" in text
    # The signature: Z over the CA key with the default ID, checked by both SM2 engines.
    # (OpenSSL 3.0's `crl -CAfile` checks SM2 CRLs with an empty ID and no way to set one,
    # so it cannot be the oracle here.)
    parsed = crl.CertificateList.load(result.der)
    point = load_certificate(sub.certificate_pem.encode()).public_key["public_key"].native
    for backend in ("openssl", "pure"):
        public = SM2PublicKey.from_point(point, get_backend(backend))
        verify_signature(
            public,
            parsed["signature_algorithm"],
            parsed["tbs_cert_list"].dump(),
            parsed["signature"].native,
        )


@pytest.mark.openssl_cli
def test_ecdsa_openssl_verify_with_crl_good_then_revoked(env: CaEnv, tmp_path: Path) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    key = generate(KeyAlgorithm.ECDSA_P256).public_bytes_spki()
    result = env.ca.issue(
        IssueRequest(
            sub.id, "server", public_key=key, subject={"CN": "a"}, san=["dns:a.example.cn"]
        )
    )
    root_pem = write(tmp_path / "root.pem", root.certificate_pem)
    chain = write(tmp_path / "chain.pem", result.chain_pem)
    ee = write(tmp_path / "ee.pem", result.certificate_pem)

    def verify() -> tuple[int, str]:
        crls = crl_pem(env.ca.current_crl(sub.id)) + crl_pem(env.ca.current_crl(root.id))
        crl_file = write(tmp_path / "crl.pem", crls)
        return openssl_output(
            "verify",
            "-CAfile",
            root_pem,
            "-untrusted",
            chain,
            "-crl_check_all",
            "-CRLfile",
            crl_file,
            ee,
        )

    code, out = verify()
    assert code == 0 and out.strip().endswith(": OK"), out
    env.ca.revoke(result.serial_hex, "keyCompromise")
    code, out = verify()
    assert code != 0 and "certificate revoked" in out, out
