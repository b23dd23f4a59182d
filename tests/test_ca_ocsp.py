"""OCSP responses checked by `openssl ocsp` (ECDSA) and by both SM2 engines (SM2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import ocsp

from ca.certs import load_certificate
from ca.issue import IssueRequest
from ca.signer import verify_signature
from tests.ca_support import CaEnv, hierarchy, make_env, run_openssl, write
from trust.keys import KeyAlgorithm, SM2PublicKey, generate
from trust.sm2.select import get_backend


@pytest.fixture
def env(sqlite_url: str) -> CaEnv:
    return make_env(sqlite_url)


def _issue(env: CaEnv, ca_id: str, algorithm: KeyAlgorithm) -> tuple[str, str]:
    key = generate(algorithm).public_bytes_spki()
    result = env.ca.issue(
        IssueRequest(ca_id, "person", public_key=key, subject={"C": "CN", "CN": "孙七"})
    )
    return result.serial_hex, result.certificate_pem


@pytest.mark.openssl_cli
def test_ecdsa_openssl_ocsp_good_then_revoked(env: CaEnv, tmp_path: Path) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    serial, ee_pem = _issue(env, sub.id, KeyAlgorithm.ECDSA_P256)
    ca = write(tmp_path / "ca.pem", sub.certificate_pem)
    root_pem = write(tmp_path / "root.pem", root.certificate_pem)
    ee = write(tmp_path / "ee.pem", ee_pem)

    def ask(name: str) -> str:
        req, resp = tmp_path / f"{name}.req", tmp_path / f"{name}.resp"
        run_openssl("ocsp", "-issuer", ca, "-cert", ee, "-reqout", req)
        resp.write_bytes(env.ca.ocsp(req.read_bytes()))
        # -reqin (and no -cert, which would build a new request) so the nonce is checked.
        return run_openssl(
            "ocsp", "-respin", resp, "-reqin", req, "-issuer", ca, "-CAfile", root_pem, "-resp_text"
        )

    out = ask("good")
    assert "Response verify OK" in out, out
    assert "Cert Status: good" in out
    assert "OCSP Nonce" in out and "WARNING" not in out
    assert "Signature Algorithm: ecdsa-with-SHA256" in out
    env.ca.revoke(serial, "keyCompromise")
    out = ask("revoked")
    assert "Response verify OK" in out, out
    assert "Cert Status: revoked" in out and "Revocation Reason: keyCompromise" in out


def test_sm2_response_verifies_with_the_pure_engine(env: CaEnv) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.SM2)
    serial, ee_pem = _issue(env, sub.id, KeyAlgorithm.SM2)
    ee = load_certificate(ee_pem.encode())
    issuer = load_certificate(sub.certificate_pem.encode())
    nonce = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    request = _request(issuer, ee.serial_number, nonce, hash_name="sm3")

    response = ocsp.OCSPResponse.load(env.ca.ocsp(request))
    assert response["response_status"].native == "successful"
    basic = response.basic_ocsp_response
    data = basic["tbs_response_data"]
    assert data["responses"][0]["cert_status"].name == "good"
    assert response.nonce_value.native == nonce
    signer = basic["certs"][0]
    assert signer.extended_key_usage_value.native == ["ocsp_signing"]
    assert signer.issuer == issuer.subject
    public = SM2PublicKey.from_point(signer.public_key["public_key"].native, get_backend("pure"))
    verify_signature(public, basic["signature_algorithm"], data.dump(), basic["signature"].native)

    env.ca.revoke(serial, "affiliation_changed")
    revoked = ocsp.OCSPResponse.load(env.ca.ocsp(request)).basic_ocsp_response
    status = revoked["tbs_response_data"]["responses"][0]["cert_status"]
    assert status.name == "revoked"
    assert status.chosen["revocation_reason"].native == "affiliation_changed"


def test_unknown_unauthorized_malformed_and_cache(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    issuer = load_certificate(sub.certificate_pem.encode())
    unknown = ocsp.OCSPResponse.load(env.ca.ocsp(_request(issuer, 12345, None)))
    assert (
        unknown.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name
        == "unknown"
    )
    other_root = make_env("sqlite://").ca  # a CA this store does not run
    foreign, _ = hierarchy_of(other_root)
    response = ocsp.OCSPResponse.load(env.ca.ocsp(_request(foreign, 1, None)))
    assert response["response_status"].native == "unauthorized"
    assert (
        ocsp.OCSPResponse.load(env.ca.ocsp(b"\x30\x03\x02\x01"))["response_status"].native
        == "malformed_request"
    )

    serial, ee_pem = _issue(env, sub.id, KeyAlgorithm.SM2)
    request = _request(issuer, int(serial, 16), None)
    first = env.ca.ocsp(request)
    assert env.ca.ocsp(request) == first  # cached: same bytes
    env.ca.revoke(serial, "superseded")
    after = ocsp.OCSPResponse.load(env.ca.ocsp(request))  # status changed: a fresh answer
    assert (
        after.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name
        == "revoked"
    )


def hierarchy_of(ca):  # type: ignore[no-untyped-def]
    from ca.service import CreateCaRequest

    root = ca.create_ca(CreateCaRequest("其他根CA"))
    return load_certificate(root.certificate_pem.encode()), root


def _request(issuer, serial: int, nonce: bytes | None, hash_name: str = "sha1") -> bytes:  # type: ignore[no-untyped-def]
    import hashlib

    from trust.sm3 import sm3

    def digest(data: bytes) -> bytes:
        return sm3(data) if hash_name == "sm3" else hashlib.new(hash_name, data).digest()

    cert_id = {
        "hash_algorithm": {"algorithm": hash_name},
        "issuer_name_hash": digest(issuer.subject.dump()),
        "issuer_key_hash": digest(issuer.public_key["public_key"].contents[1:]),
        "serial_number": serial,
    }
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id}]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    return ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def test_kept_answers_go_with_a_status_change_in_any_worker(sqlite_url: str) -> None:
    """Two CA services (two workers) over one database and one coordination: a repeated
    nonce-less request is answered without a status read, until a revocation anywhere."""
    import time

    from ca.service import CertificateAuthority
    from tests.ca_support import URLS
    from trust.clock import SystemClock
    from trust.coordination.memory import MemoryCoordination

    env = make_env(sqlite_url)
    coordination = MemoryCoordination()
    _, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    workers = [
        CertificateAuthority(
            env.store,
            env.keys,
            SystemClock(),
            URLS,
            coordination=coordination,
            ocsp_status_seconds=60,
        )
        for _ in range(2)
    ]
    serial, _ = _issue(env, sub.id, KeyAlgorithm.ECDSA_P256)
    request = _request(load_certificate(sub.certificate_pem.encode()), int(serial, 16), None)

    def status(answer: bytes) -> str:
        basic = ocsp.OCSPResponse.load(answer).basic_ocsp_response
        return str(basic["tbs_response_data"]["responses"][0]["cert_status"].name)

    for worker in workers:
        assert worker.ocsp_cached(request) is None
        assert status(worker.ocsp(request)) == "good"
        kept = worker.ocsp_cached(request)
        assert kept is not None and status(kept) == "good"
    # A nonce makes every answer fresh: never kept.
    with_nonce = _request(load_certificate(sub.certificate_pem.encode()), int(serial, 16), b"n")
    workers[0].ocsp(with_nonce)
    assert workers[0].ocsp_cached(with_nonce) is None

    workers[0].revoke(serial, "key_compromise")
    assert workers[0].ocsp_cached(request) is None
    deadline = time.monotonic() + 5
    while workers[1].ocsp_cached(request) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # the broadcast arrives on a background thread
    assert workers[1].ocsp_cached(request) is None
    assert status(workers[1].ocsp(request)) == "revoked"
    for worker in workers:
        worker.close()
