"""The verification API: reports for CMS, raw signatures and certificates, ParseCert,
refusals of malformed requests (4xx problem+json, never 500) and the verifier role."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api_support import ApiEnv, make_env
from tests.test_verify_cms import CONTENT, NOW, openssl_signed, pki
from trust.auth import Grant, Role

VECTORS = Path(__file__).parent / "vectors"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pem(der_cert: Any) -> str:
    return der_cert.public_bytes(serialization.Encoding.PEM).decode()


def env_with_root(tmp_path: Path, **settings: Any) -> ApiEnv:
    roots = tmp_path / "roots.pem"
    roots.write_text(pem(pki().root.cert))
    env = make_env(tmp_path, trust_anchor_files=[roots], **settings)
    env.clock.set(NOW)
    return env


@pytest.mark.openssl_cli
def test_verify_cms_total_passed_with_configured_root(tmp_path: Path) -> None:
    env = env_with_root(tmp_path)
    der = openssl_signed(tmp_path, detached=True)
    # The sub CA is not in the CMS (openssl adds only the signer): the chain is not found
    r = env.client.post("/v1/verify/cms", json={"cms_b64": b64(der), "data_b64": b64(CONTENT)})
    assert r.status_code == 200
    assert r.json()["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    roots = tmp_path / "roots.pem"
    roots.write_text(pem(pki().root.cert) + pem(pki().sub.cert))
    r = env.client.post("/v1/verify/cms", json={"cms_b64": b64(der), "data_b64": b64(CONTENT)})
    assert r.status_code == 200 and r.json()["indication"] == "TOTAL_PASSED", r.text
    r = env.client.post("/v1/verify/cms", json={"cms_b64": b64(der), "data_b64": b64(b"x")})
    assert r.json()["sub_indication"] == "HASH_FAILURE"


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x30\x80" * 20_000, b"\x30\x84\xff\xff\xff\xff\x00", os.urandom(600_000)],
    ids=["empty", "nested_indefinite", "huge_length", "garbage"],
)
def test_malformed_cms_is_a_format_failure_report(tmp_path: Path, blob: bytes) -> None:
    env = make_env(tmp_path)
    env.client.get("/healthz")  # the test client's first request starts its event loop
    started = time.monotonic()
    r = env.client.post("/v1/verify/cms", json={"cms_b64": b64(blob)})
    assert time.monotonic() - started < 1.0
    assert r.status_code == 200
    assert (r.json()["indication"], r.json()["sub_indication"]) == (
        "TOTAL_FAILED",
        "FORMAT_FAILURE",
    )


def test_ten_megabytes_of_garbage_is_refused_fast(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.client.get("/healthz")  # the test client's first request starts its event loop
    # Encoded before the clock starts: the time measured is the server's.
    body = json.dumps({"cms_b64": b64(os.urandom(10 << 20))}).encode()
    headers = {"Content-Type": "application/json"}
    started = time.monotonic()
    r = env.client.post("/v1/verify/cms", content=body, headers=headers)
    assert time.monotonic() - started < 1.0
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/verify/cms", {"cms_b64": "not base64!"}, 422),
        ("/v1/verify/cms", {"cms_b64": "AAAA", "extra": 1}, 422),
        ("/v1/verify/certificate", {"certificate_pem": "garbage"}, 400),
        ("/v1/verify/certificate", {"certificate_pem": "-----BEGIN X-----\nAA==\n"}, 400),
        ("/v1/certificates:parse", {"certificate_pem": "AAAA"}, 400),
        (
            "/v1/verify/signature",
            {"certificate_pem": "x", "signature_b64": "AAAA"},  # neither data nor digest
            422,
        ),
    ],
)
def test_malformed_requests_are_problems(
    tmp_path: Path, path: str, body: dict[str, Any], status: int
) -> None:
    env = make_env(tmp_path)
    r = env.client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_verify_signature_and_certificate(tmp_path: Path) -> None:
    env = env_with_root(tmp_path)
    p = pki()
    assert isinstance(p.leaf.key, ec.EllipticCurvePrivateKey)
    signature = p.leaf.key.sign(CONTENT, ec.ECDSA(hashes.SHA256()))
    body = {
        "certificate_pem": pem(p.leaf.cert),
        "data_b64": b64(CONTENT),
        "signature_b64": b64(signature),
    }
    r = env.client.post("/v1/verify/signature", json={**body, "verify_level": 0})
    assert r.status_code == 200 and r.json()["indication"] == "TOTAL_PASSED", r.text
    r = env.client.post("/v1/verify/signature", json={**body, "data_b64": b64(b"other")})
    assert r.json()["sub_indication"] == "SIG_CRYPTO_FAILURE"

    leaf = {"certificate_pem": pem(p.leaf.cert)}
    r = env.client.post("/v1/verify/certificate", json=leaf)
    assert r.json()["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    r = env.client.post("/v1/verify/certificate", json={**leaf, "chain_pem": pem(p.sub.cert)})
    assert r.status_code == 200 and r.json()["indication"] == "TOTAL_PASSED", r.text
    r = env.client.post(
        "/v1/verify/certificate",
        json={**leaf, "chain_pem": pem(p.sub.cert), "at": "2024-06-01T00:00:00Z"},
    )
    assert r.json()["sub_indication"] == "NOT_YET_VALID"


def test_parse_certificate(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    cert = (VECTORS / "certs" / "tongsuo_sm2-root-cert.pem").read_text()
    r = env.client.post("/v1/certificates:parse", json={"certificate_pem": cert})
    assert r.status_code == 200
    fields = r.json()
    assert fields["ca"] is True and fields["subject"].startswith("emailAddress=ca@sm2")
    assert fields["signature_algorithm"].endswith("(1.2.156.10197.1.501)")
    assert fields["key_usage"] == ["crl_sign", "key_cert_sign"]


def test_verifier_role_required_when_not_public(tmp_path: Path) -> None:
    env = make_env(tmp_path, public_verify=False)
    cert = (VECTORS / "certs" / "tongsuo_sm2-root-cert.pem").read_text()
    body = {"certificate_pem": cert}
    assert env.client.post("/v1/certificates:parse", json=body).status_code == 401
    signer = env.headers(Grant(Role.signer))
    assert env.client.post("/v1/certificates:parse", json=body, headers=signer).status_code == 403
    verifier = env.headers(Grant(Role.verifier))
    r = env.client.post("/v1/certificates:parse", json=body, headers=verifier)
    assert r.status_code == 200


def test_openapi_documents_examples(tmp_path: Path) -> None:
    schema = make_env(tmp_path).client.get("/openapi.json").json()
    for path in ("/v1/verify/cms", "/v1/verify/signature", "/v1/certificates:parse"):
        assert path in schema["paths"]
    assert schema["components"]["schemas"]["VerifyCmsRequest"]["examples"]
