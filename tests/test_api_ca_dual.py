"""Dual certificates and key recovery over HTTP: ca_operator issues, key_admin recovers,
the subscriber opens the envelope with the pure gmssl backend; refusals change nothing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ca.certs import load_certificate
from keystore.escrow import open_enveloped_key
from tests.api_support import ApiEnv, make_env
from tests.ca_support import python_csr
from tests.test_api_ca import hierarchy, problem
from trust.audit import AuditLog
from trust.auth import Grant, Role
from trust.keys import KeyAlgorithm, generate
from trust.keys.sm2 import SM2PrivateKey
from trust.sm2.pure import PureBackend


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    env = make_env(tmp_path)
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    return env


def _open(envelope_b64: str, key: SM2PrivateKey) -> bytes:
    pure = PureBackend()
    opened = open_enveloped_key(
        base64.b64decode(envelope_b64),
        SM2PrivateKey.from_scalar(key.scalar(), pure),
        backend=pure,
    )
    return opened.public_key().point()


def _point(pem: str) -> bytes:
    return bytes(load_certificate(pem.encode()).public_key["public_key"].native)


def test_dual_issue_and_recovery(env: ApiEnv) -> None:
    operator = env.headers(Grant(Role.ca_operator))
    key_admin = env.headers(Grant(Role.key_admin))
    _, sub = hierarchy(env, operator, "sm2")
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    csr = python_csr(key, {"common_name": "赵六"})
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(csr).decode()
    pem += "-----END CERTIFICATE REQUEST-----\n"
    body = {"csr_pem": pem, "san": ["email:zhaoliu@example.cn"]}

    r = env.client.post(f"/v1/cas/{sub['id']}/certificates:dual", json=body, headers=operator)
    assert r.status_code == 201, r.text
    dual = r.json()
    assert r.headers["location"] == f"/v1/certificates/{dual['signing']['serial_hex']}"
    encryption_point = _point(dual["encryption"]["certificate_pem"])
    assert _open(dual["enveloped_key_b64"], key) == encryption_point
    enc_serial = dual["encryption"]["serial_hex"]
    shown = env.client.get(f"/v1/certificates/{enc_serial}", headers=operator).json()
    assert shown["profile"] == "encryption" and shown["status"] == "good"

    # Recovery is the key administrator's, not the CA operator's.
    url = f"/v1/certificates/{enc_serial}/recover-key"
    problem(env.client.post(url, json={}, headers=operator), 403, "forbidden")
    r = env.client.post(url, json={}, headers=key_admin)
    assert r.status_code == 200, r.text
    recovered = r.json()
    assert recovered["recipient_serial_hex"] == dual["signing"]["serial_hex"]
    assert _open(recovered["enveloped_key_b64"], key) == encryption_point
    assert env.client.post(url, headers=key_admin).status_code == 200  # the body is optional

    audit = AuditLog(env.db, env.clock)
    records = audit.tail(40)
    kinds = {(r.action, r.outcome) for r in records}
    assert ("certificate.issue_dual", "success") in kinds
    assert ("certificate.recover_key", "success") in kinds
    assert ("key.export_enveloped", "success") in kinds

    # Refusals: no escrow behind a signing certificate, a bad recipient, an ECDSA CSR.
    signing_url = f"/v1/certificates/{dual['signing']['serial_hex']}/recover-key"
    problem(
        env.client.post(signing_url, json={}, headers=key_admin), 409, "certificate_not_escrowed"
    )
    problem(
        env.client.post(url, json={"recipient_serial_hex": enc_serial}, headers=key_admin),
        409,
        "escrow_recipient_invalid",
    )
    problem(env.client.post(url, json={"recipient_serial_hex": "zz"}, headers=key_admin), 422)
    ecdsa = generate(KeyAlgorithm.ECDSA_P256)
    ecdsa_pem = "-----BEGIN CERTIFICATE REQUEST-----\n"
    ecdsa_pem += base64.encodebytes(python_csr(ecdsa, {"common_name": "x"})).decode()
    ecdsa_pem += "-----END CERTIFICATE REQUEST-----\n"
    before = len(env.client.get("/v1/certificates", headers=operator).json()["certificates"])
    problem(
        env.client.post(
            f"/v1/cas/{sub['id']}/certificates:dual", json={"csr_pem": ecdsa_pem}, headers=operator
        ),
        422,
        "profile_key_not_allowed",
    )
    problem(
        env.client.post(
            f"/v1/cas/{sub['id']}/certificates:dual",
            json={"csr_pem": "junk"},
            headers=operator,
        ),
        400,
    )
    after = len(env.client.get("/v1/certificates", headers=operator).json()["certificates"])
    assert after == before
