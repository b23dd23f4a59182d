"""The CA over the app: create hierarchies, issue from SM2 (openssl) and ECDSA
(cryptography) CSRs, find, revoke, download the CRL and ask OCSP over POST and GET,
with the openssl command line as the oracle; who may do what; bad input."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.ocsp import OCSPRequestBuilder
from cryptography.x509.oid import NameOID

from tests.api_support import ApiEnv, make_env
from tests.ca_support import DISTID, need_openssl, run_openssl, write
from trust.audit import AuditLog
from trust.auth import Grant, Role

PROBLEM = "application/problem+json"


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    env = make_env(tmp_path)
    # Real time, so that openssl's own validity checks of what the CA signs pass.
    env.clock.set(datetime.now(UTC).replace(microsecond=0))
    return env


@pytest.fixture
def operator(env: ApiEnv) -> dict[str, str]:
    return env.headers(Grant(Role.ca_operator))


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def hierarchy(env: ApiEnv, headers: dict[str, str], algorithm: str) -> tuple[dict[str, Any], ...]:
    r = env.client.post(
        "/v1/cas",
        json={"name": f"Test {algorithm} Root", "key_algorithm": algorithm, "validity_days": 3650},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    root = r.json()
    assert r.headers["location"] == f"/v1/cas/{root['id']}"
    r = env.client.post(
        "/v1/cas",
        json={
            "name": f"Test {algorithm} Issuing",
            "subject": {"C": "CN", "O": "Test", "CN": f"Test {algorithm} Issuing"},
            "key_algorithm": algorithm,
            "parent_ca_id": root["id"],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["parent_id"] == root["id"] and sub["algorithm"] == algorithm
    return root, sub


def ecdsa_csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def ocsp_request(leaf_pem: str, issuer_pem: str) -> bytes:
    request = (
        OCSPRequestBuilder()
        .add_certificate(
            x509.load_pem_x509_certificate(leaf_pem.encode()),
            x509.load_pem_x509_certificate(issuer_pem.encode()),
            hashes.SHA1(),
        )
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


def test_sm2_issue_from_openssl_csr(env: ApiEnv, operator: dict[str, str], tmp_path: Path) -> None:
    need_openssl()
    root, sub = hierarchy(env, operator, "sm2")
    key = tmp_path / "k.pem"
    csr = tmp_path / "req.pem"
    run_openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", key)
    run_openssl(
        "req", "-new", "-key", key, "-subj", "/C=CN/O=Example/CN=Zhang San",
        "-sm3", "-sigopt", DISTID, "-out", csr,
    )  # fmt: skip
    r = env.client.post(
        f"/v1/cas/{sub['id']}/certificates",
        json={"csr_pem": csr.read_text(), "profile": "person"},
        headers=operator,
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert set(issued) == {"serial_hex", "certificate_pem", "chain_pem", "not_before", "not_after"}
    assert r.headers["location"] == f"/v1/certificates/{issued['serial_hex']}"
    # OpenSSL 3.0 applies -vfyopt distid to the leaf only: each SM2 link is checked alone.
    leaf = write(tmp_path / "leaf.pem", issued["certificate_pem"])
    sub_pem = write(tmp_path / "sub.pem", sub["certificate_pem"])
    out = run_openssl("verify", "-partial_chain", "-vfyopt", DISTID, "-CAfile", sub_pem, leaf)
    assert "OK" in out
    chain = env.client.get(f"/v1/cas/{sub['id']}/chain").text
    assert chain == sub["certificate_pem"] + root["certificate_pem"]
    text = run_openssl("x509", "-in", leaf, "-noout", "-subject", "-serial")
    assert "CN = Zhang San" in text and issued["serial_hex"].upper().lstrip("0") in text


def test_ecdsa_issue_find_revoke_crl_and_ocsp(
    env: ApiEnv, operator: dict[str, str], tmp_path: Path
) -> None:
    need_openssl()
    root, sub = hierarchy(env, operator, "ecdsa-p256")
    r = env.client.post(
        f"/v1/cas/{sub['id']}/certificates",
        json={
            "csr_pem": ecdsa_csr("ignored"),
            "profile": "server",
            "subject": {"CN": "www.example.cn", "O": "Example"},
            "san": ["dns:www.example.cn"],
            "validity_days": 90,
        },
        headers=operator,
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    serial = issued["serial_hex"]

    root_pem = write(tmp_path / "root.pem", root["certificate_pem"])
    chain_pem = write(tmp_path / "chain.pem", issued["chain_pem"])
    leaf = write(tmp_path / "leaf.pem", issued["certificate_pem"])
    assert "OK" in run_openssl("verify", "-CAfile", root_pem, "-untrusted", chain_pem, leaf)

    shown = env.client.get(f"/v1/certificates/{serial}", headers=operator).json()
    assert shown["status"] == "good" and shown["subject"].endswith("CN=www.example.cn")
    found = env.client.get(
        "/v1/certificates", params={"subject": "example.cn", "status": "good"}, headers=operator
    ).json()
    assert [c["serial_hex"] for c in found["certificates"]] == [serial]
    assert found["next_offset"] is None
    assert (
        env.client.get("/v1/certificates", params={"status": "revoked"}, headers=operator).json()[
            "certificates"
        ]
        == []
    )
    profiles = env.client.get("/v1/profiles", headers=operator).json()["profiles"]
    assert "server" in {p["name"] for p in profiles}
    cas = env.client.get("/v1/cas", headers=operator).json()["cas"]
    assert {c["id"] for c in cas} == {root["id"], sub["id"]}

    request = ocsp_request(issued["certificate_pem"], sub["certificate_pem"])
    r = env.client.post(
        "/ocsp", content=request, headers={"content-type": "application/ocsp-request"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    assert ": good" in _ocsp_status(tmp_path, r.content, root_pem, chain_pem, serial)

    r = env.client.post(
        f"/v1/certificates/{serial}/revoke", json={"reason": "key_compromise"}, headers=operator
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["revocation_reason"] == "key_compromise"

    r = env.client.get(f"/crl/{sub['id']}.crl")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    max_age = int(r.headers["cache-control"].removeprefix("max-age="))
    assert 0 < max_age <= env.settings.ca_crl_validity_hours * 3600
    revoked = asn1_crl.CertificateList.load(r.content)["tbs_cert_list"]["revoked_certificates"]
    assert [e["user_certificate"].native for e in revoked] == [int(serial, 16)]
    crl_file = write(tmp_path / "sub.crl", r.content)
    crl_text = run_openssl("crl", "-inform", "DER", "-in", crl_file, "-noout", "-text")
    assert serial.upper().lstrip("0") in crl_text.replace(":", "").upper()

    r = env.client.post(
        "/ocsp", content=request, headers={"content-type": "application/ocsp-request"}
    )
    assert ": revoked" in _ocsp_status(tmp_path, r.content, root_pem, chain_pem, serial)
    encoded = base64.b64encode(request).decode()
    r = env.client.get("/ocsp/" + encoded.replace("/", "%2F"))
    assert r.status_code == 200, r.text
    assert ": revoked" in _ocsp_status(tmp_path, r.content, root_pem, chain_pem, serial)

    r = env.client.get(
        f"/v1/cas/{sub['id']}/certificate", headers={"accept": "application/pkix-cert"}
    )
    assert r.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(r.content).serial_number == int(sub["serial_hex"], 16)

    # Audited under the calling token's actor, not the CA's own key-store principal.
    entries = AuditLog(env.db, env.clock).tail(50)
    actions = {(e.action, e.outcome) for e in entries if e.actor.startswith("token:")}
    assert {("ca.create", "success"), ("certificate.issue", "success")} <= actions
    assert ("certificate.revoke", "success") in actions


def _ocsp_status(tmp_path: Path, response: bytes, root: Path, chain: Path, serial: str) -> str:
    resp = write(tmp_path / "resp.der", response)
    proc = subprocess.run(
        [
            "openssl", "ocsp", "-respin", resp, "-CAfile", root, "-verify_other", chain,
            "-issuer", chain, "-serial", "0x" + serial, "-no_nonce",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert "Response verify OK" in proc.stderr + proc.stdout, proc.stderr
    return proc.stdout


def test_hold_and_release(env: ApiEnv, operator: dict[str, str]) -> None:
    _, sub = hierarchy(env, operator, "ecdsa-p256")
    issued = env.client.post(
        f"/v1/cas/{sub['id']}/certificates",
        json={"csr_pem": ecdsa_csr("Li Si"), "profile": "person"},
        headers=operator,
    ).json()
    serial = issued["serial_hex"]
    r = env.client.post(
        f"/v1/certificates/{serial}/revoke", json={"reason": "certificate_hold"}, headers=operator
    )
    assert r.json()["status"] == "on_hold"
    r = env.client.post(f"/v1/certificates/{serial}/release-hold", headers=operator)
    assert r.status_code == 200 and r.json()["status"] == "good"
    problem(
        env.client.post(
            f"/v1/certificates/{serial}/revoke", json={"reason": "bogus"}, headers=operator
        ),
        422,
    )


def test_refusals(env: ApiEnv, operator: dict[str, str]) -> None:
    body = {"name": "Nobody", "key_algorithm": "sm2"}
    problem(env.client.post("/v1/cas", json=body), 401, "unauthenticated")
    signer = env.headers(Grant(Role.signer))
    problem(env.client.post("/v1/cas", json=body, headers=signer), 403, "forbidden")
    problem(env.client.get("/v1/certificates", headers=signer), 403, "forbidden")
    problem(env.client.post("/v1/cas", json={**body, "extra": 1}, headers=operator), 422)
    rsa = {"name": "RSA 4096", "key_algorithm": "rsa-4096"}  # no key store algorithm
    problem(env.client.post("/v1/cas", json=rsa, headers=operator), 400, "unsupported_algorithm")

    _, sub = hierarchy(env, operator, "ecdsa-p256")
    url = f"/v1/cas/{sub['id']}/certificates"
    for csr in (
        "not a csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ecdsa_csr("x").replace("A", "B", 3),
    ):
        r = env.client.post(url, json={"csr_pem": csr, "profile": "person"}, headers=operator)
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"] == PROBLEM
    problem(
        env.client.post(url, json={"csr_pem": ecdsa_csr("x"), "profile": "nope"}, headers=operator),
        404,
        "profile_not_found",
    )
    problem(
        env.client.post(
            "/v1/cas/ca_0000/certificates",
            json={"csr_pem": ecdsa_csr("x"), "profile": "person"},
            headers=operator,
        ),
        404,
        "ca_not_found",
    )
    problem(env.client.get("/v1/certificates/0", headers=operator), 422)
    problem(env.client.get("/v1/certificates/abcdef", headers=operator), 404)
    problem(env.client.get("/crl/ca_0000.crl"), 404, "ca_not_found")
    problem(env.client.post("/ocsp", content=b"\x30\x00"), 415)
    problem(env.client.get("/ocsp/not*base64"), 422, "validation_failed")
    problem(env.client.get("/ocsp/abc"), 400, "bad_request_encoding")
    r = env.client.post(
        "/ocsp", content=b"junk", headers={"content-type": "application/ocsp-request"}
    )
    assert r.status_code == 200 and r.content == bytes.fromhex("30030a0101")  # malformedRequest

    failed = [e for e in AuditLog(env.db, env.clock).tail(50) if e.outcome == "failure"]
    assert any(e.action == "certificate.issue" for e in failed)
