"""The verification API with the service's own CA: its CRLs used in-process for the
certificates it issued, signature timestamps as proof of existence, evidence bundles that
re-verify offline, revocation input and modes, /verify/timestamp and the batch routes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509
from cryptography.hazmat.primitives import serialization

from api.deps import Services
from ca.issue import IssueRequest
from ca.service import ensure_default_hierarchy
from tests.api_support import ApiEnv, make_env
from tests.validation_support import PycaPki, pyca_cms, pyca_crl, pyca_pki, pyca_tsa, stamp
from timestamp.checker import TokenChecker
from trust.clock import FakeClock
from trust.cms import KeySigner, build_signed_data
from trust.keys import KeyAlgorithm, PrivateKey, generate
from trust.validation import RevocationMode
from trust.validation.evidence import EvidenceBundle, reverify

START = datetime(2026, 3, 1, tzinfo=UTC)
SIGNED = START + timedelta(hours=1)
REVOKED = START + timedelta(days=1)
VERIFIED = START + timedelta(days=2)
CONTENT = b"contract text"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@cache
def tsa_pki() -> PycaPki:
    return pyca_pki("ecdsa")


def tsa_crls() -> list[str]:
    """CRLs for the TSA's outside PKI: ``require`` needs them for the TSA's path too."""
    p = tsa_pki()
    return [b64(pyca_crl(n, this_update=START)) for n in (p.sub, p.root)]


def env_with_tsa_root(tmp_path: Path) -> ApiEnv:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(tsa_pki().root.cert.public_bytes(serialization.Encoding.PEM))
    env = make_env(tmp_path, trust_anchor_files=[roots])
    env.clock.set(START)
    return env


def services(env: ApiEnv) -> Services:
    found = env.app.state.services
    assert isinstance(found, Services)
    return found


def issued_signer(env: ApiEnv) -> tuple[PrivateKey, x509.Certificate, str]:
    """An SM2 key certified by the service's default SM2 issuing CA (person profile)."""
    ca = services(env).ca()
    cas = ensure_default_hierarchy(ca, env.settings)
    issuing = next(c for c in cas if c.parent_id is not None and c.algorithm == KeyAlgorithm.SM2)
    key = generate(KeyAlgorithm.SM2)
    result = ca.issue(
        IssueRequest(
            issuing.id,
            "person",
            public_key=key.public_bytes_spki(),
            subject={"common_name": "Verifier Test Person"},
        )
    )
    return key, x509.Certificate.load(result.certificate_der), result.serial_hex


def signed_cms(key: PrivateKey, cert: x509.Certificate, *, stamped_at: datetime | None) -> bytes:
    der = build_signed_data(CONTENT, KeySigner(key, cert))
    if stamped_at is None:
        return der
    tsa, _ = pyca_tsa(tsa_pki().sub, FakeClock(stamped_at))
    return stamp(der, tsa)


def post_cms(env: ApiEnv, der: bytes, query: str = "", **fields: Any) -> dict[str, Any]:
    r = env.client.post(f"/v1/verify/cms{query}", json={"cms_b64": b64(der), **fields})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_service_crl_decides_for_certificates_it_issued(tmp_path: Path) -> None:
    env = env_with_tsa_root(tmp_path)
    key, cert, serial = issued_signer(env)
    plain = signed_cms(key, cert, stamped_at=None)
    before_stamp = signed_cms(key, cert, stamped_at=SIGNED)
    after_stamp = signed_cms(key, cert, stamped_at=REVOKED + timedelta(hours=1))

    good = post_cms(env, plain, revocation_mode="require", crls_b64=tsa_crls())
    assert good["indication"] == "TOTAL_PASSED", good
    # The leaf and the issuing CA, from the service CAs' own OCSP responders, asked in
    # process (certvalidator uses them before the service CRLs, which are also given).
    assert [(e["source"], e["status"]) for e in good["revocation"]] == [("ocsp", "good")] * 2
    assert {e["certificate_serial"] for e in good["revocation"]} >= {serial.lower().lstrip("0")}

    env.clock.set(REVOKED)
    services(env).ca().revoke(serial, "key_compromise")
    env.clock.set(VERIFIED)
    revoked = post_cms(env, plain, revocation_mode="require", crls_b64=tsa_crls())
    assert (revoked["indication"], revoked["sub_indication"]) == ("INDETERMINATE", "REVOKED_NO_POE")
    assert any(
        (e["source"], e["status"], e["revocation_reason"]) == ("ocsp", "revoked", "key_compromise")
        for e in revoked["revocation"]
    ), revoked["revocation"]

    proven = post_cms(env, before_stamp, revocation_mode="require", crls_b64=tsa_crls())
    assert proven["indication"] == "TOTAL_PASSED", proven
    assert proven["time_source"] == "proven"
    assert proven["proven_signing_time"].startswith("2026-03-01T01:00:01")
    late = post_cms(env, after_stamp, revocation_mode="require", crls_b64=tsa_crls())
    assert late["sub_indication"] == "REVOKED_NO_POE"
    assert late["timestamps"][0]["indication"] == "TOTAL_PASSED"


def test_evidence_bundle_reverifies_offline(tmp_path: Path) -> None:
    env = env_with_tsa_root(tmp_path)
    key, cert, serial = issued_signer(env)
    env.clock.set(REVOKED)
    services(env).ca().revoke(serial, "key_compromise")
    env.clock.set(VERIFIED)
    checker = TokenChecker()
    for der, verdict in [
        (signed_cms(key, cert, stamped_at=SIGNED), (None, "TOTAL_PASSED")),
        (signed_cms(key, cert, stamped_at=None), ("REVOKED_NO_POE", "INDETERMINATE")),
    ]:
        answer = post_cms(
            env, der, "?evidence=true", revocation_mode="require", crls_b64=tsa_crls()
        )
        report = answer["report"]
        assert report["indication"] == verdict[1] and report["sub_indication"] == verdict[0]
        bundle = EvidenceBundle.model_validate(answer["evidence"])
        assert bundle.format == "trust-evidence/1" and bundle.crls_b64
        # The verifier decides to trust the anchors the bundle names, after checking them.
        anchors = bundle.anchors()
        assert anchors and all(a.self_signed for a in anchors)
        assert len(bundle.timestamps_b64) == (1 if verdict[0] is None else 0)
        # Offline: only the bundle, the CMS and the verifier's anchors; the TSA's root is
        # not among the bundle's anchors (it came from the service's configuration).
        tsa_root = x509.Certificate.load(tsa_pki().root.der)
        offline = reverify(
            der,
            None,
            bundle,
            anchors=[*anchors, tsa_root],
            timestamp_checker=checker,
            revocation_mode=RevocationMode.REQUIRE,
            clock=FakeClock(VERIFIED),
        )
        assert offline.model_dump(mode="json") == report
        # The service's OCSP answers are in the bundle too; validated now they carry the
        # status alone (at a past time they do not: the delegated responder's certificate
        # is newer, and the CRLs carry it). The TSA's outside PKI keeps its CRLs.
        # the signer's, and each service issuing CA's (offered as intermediates)
        assert len(bundle.ocsp_responses_b64) >= 2
        if report["time_source"] == "current":
            ocsp_only = bundle.model_copy(update={"crls_b64": tuple(tsa_crls())})
            again = reverify(
                der,
                None,
                ocsp_only,
                anchors=anchors,
                revocation_mode=RevocationMode.REQUIRE,
                clock=FakeClock(VERIFIED),
            )
            assert (again.indication, again.sub_indication) == (verdict[1], verdict[0])
            assert {e.source for e in again.revocation} == {"ocsp"}
        # Without the bundle's CRLs and OCSP answers the question has no answer.
        bare = bundle.model_copy(update={"crls_b64": (), "ocsp_responses_b64": ()})
        again = reverify(
            der,
            None,
            bare,
            anchors=anchors,
            revocation_mode=RevocationMode.REQUIRE,
            clock=FakeClock(VERIFIED),
        )
        assert again.sub_indication == "TRY_LATER"


def test_plain_answer_without_evidence_query(tmp_path: Path) -> None:
    env = env_with_tsa_root(tmp_path)
    report = post_cms(env, pyca_cms(tsa_pki().leaf, CONTENT))
    assert "indication" in report and "evidence" not in report


# --- revocation input (an outside PKI) --------------------------------------------------


@cache
def outside() -> PycaPki:
    return pyca_pki("ecdsa")


def env_with_outside_root(tmp_path: Path) -> ApiEnv:
    roots = tmp_path / "outside.pem"
    roots.write_bytes(
        b"".join(
            n.cert.public_bytes(serialization.Encoding.PEM)
            for n in (outside().root, tsa_pki().root)
        )
    )
    env = make_env(tmp_path, trust_anchor_files=[roots])
    env.clock.set(VERIFIED)
    return env


def pem(node: Any) -> str:
    return str(node.cert.public_bytes(serialization.Encoding.PEM).decode())


def outside_crls(revoked: bool) -> list[str]:
    p = outside()
    entries = ((p.leaf, REVOKED),) if revoked else ()
    return [
        b64(pyca_crl(p.sub, entries, this_update=VERIFIED - timedelta(hours=1))),
        b64(pyca_crl(p.root, this_update=VERIFIED - timedelta(hours=1))),
    ]


def test_certificate_revoked_by_a_supplied_crl_is_revoked(tmp_path: Path) -> None:
    env = env_with_outside_root(tmp_path)
    body = {"certificate_pem": pem(outside().leaf), "chain_pem": pem(outside().sub)}
    r = env.client.post(
        "/v1/verify/certificate", json={**body, "crls_b64": outside_crls(revoked=True)}
    )
    assert (r.json()["indication"], r.json()["sub_indication"]) == ("TOTAL_FAILED", "REVOKED")
    r = env.client.post(
        "/v1/verify/certificate",
        json={**body, "crls_b64": outside_crls(revoked=False), "revocation_mode": "require"},
    )
    assert r.json()["indication"] == "TOTAL_PASSED", r.text
    assert [e["status"] for e in r.json()["revocation"]] == ["good", "good"]


@pytest.mark.parametrize("mode", ["require", "hard-fail"])
def test_required_revocation_without_data_is_try_later(tmp_path: Path, mode: str) -> None:
    env = env_with_outside_root(tmp_path)
    p = outside()
    fields = {"revocation_mode": mode}
    r = env.client.post(
        "/v1/verify/certificate",
        json={"certificate_pem": pem(p.leaf), "chain_pem": pem(p.sub), **fields},
    )
    if mode == "require":
        assert (r.json()["indication"], r.json()["sub_indication"]) == (
            "INDETERMINATE",
            "TRY_LATER",
        )
    else:  # the outside leaf names no CRL or OCSP location: nothing is required
        assert r.json()["indication"] == "TOTAL_PASSED", r.text


@pytest.mark.parametrize(
    "field", [{"crls_b64": ["AAAA"]}, {"ocsp_responses_b64": ["MAA="]}, {"crls_b64": ["!"]}]
)
def test_malformed_revocation_input_is_a_problem(tmp_path: Path, field: dict[str, Any]) -> None:
    env = env_with_outside_root(tmp_path)
    r = env.client.post(
        "/v1/verify/certificate", json={"certificate_pem": pem(outside().leaf), **field}
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_too_many_crls_are_refused(tmp_path: Path) -> None:
    env = env_with_outside_root(tmp_path)
    r = env.client.post(
        "/v1/verify/certificate",
        json={"certificate_pem": pem(outside().leaf), "crls_b64": ["AAAA"] * 33},
    )
    assert r.status_code == 422


# --- /verify/timestamp ------------------------------------------------------------------


def token_over(data: bytes) -> bytes:
    from trust.cms.algorithms import digest

    tsa, _ = pyca_tsa(tsa_pki().sub, FakeClock(SIGNED))
    return tsa.issue("sha256", digest("sha256", data)).token


def test_verify_timestamp_route(tmp_path: Path) -> None:
    env = env_with_outside_root(tmp_path)
    token = token_over(b"the data")
    r = env.client.post(
        "/v1/verify/timestamp", json={"token_b64": b64(token), "data_b64": b64(b"the data")}
    )
    assert r.status_code == 200 and r.json()["indication"] == "TOTAL_PASSED", r.text
    assert r.json()["validated_object"] == "timestamp"
    assert r.json()["proven_signing_time"].startswith("2026-03-01T01:00:01")
    from trust.cms.algorithms import digest

    r = env.client.post(
        "/v1/verify/timestamp",
        json={"token_b64": b64(token), "digest_b64": b64(digest("sha256", b"other"))},
    )
    assert r.json()["sub_indication"] == "HASH_FAILURE"
    r = env.client.post("/v1/verify/timestamp", json={"token_b64": b64(b"\x30\x00")})
    assert (r.status_code, r.json()["sub_indication"]) == (200, "FORMAT_FAILURE")
    r = env.client.post(
        "/v1/verify/timestamp",
        json={"token_b64": b64(token), "data_b64": "AA==", "digest_b64": "AA=="},
    )
    assert r.status_code == 422


# --- batches ----------------------------------------------------------------------------


def test_cms_batch(tmp_path: Path) -> None:
    env = env_with_outside_root(tmp_path)
    good = pyca_cms(outside().leaf, CONTENT)
    items = [
        {"cms_b64": b64(good)},
        {"cms_b64": b64(good.replace(CONTENT, b"CONTRACT TEXT"))},
        {"cms_b64": b64(b"junk")},
        {"cms_b64": b64(pyca_cms(outside().leaf, CONTENT, detached=True)), "data_b64": b64(b"x")},
    ]
    extra = {"crls_b64": outside_crls(revoked=False)}
    r = env.client.post(
        "/v1/verify/cms:batch",
        json={"items": items, "revocation_mode": "require", **extra},
    )
    assert r.status_code == 200, r.text
    verdicts = [
        (x["report"]["indication"], x["report"]["sub_indication"]) for x in r.json()["results"]
    ]
    assert verdicts == [
        ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),  # the sub CA is not in the CMS
        ("TOTAL_FAILED", "HASH_FAILURE"),
        ("TOTAL_FAILED", "FORMAT_FAILURE"),
        ("TOTAL_FAILED", "HASH_FAILURE"),
    ]


def test_signature_batch_reports_and_item_errors(tmp_path: Path) -> None:
    env = env_with_outside_root(tmp_path)
    p = outside()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(p.leaf.key, ec.EllipticCurvePrivateKey)
    signature = p.leaf.key.sign(CONTENT, ec.ECDSA(hashes.SHA256()))
    item = {"certificate_pem": pem(p.leaf), "data_b64": b64(CONTENT), "verify_level": 0}
    items = [
        {**item, "signature_b64": b64(signature)},
        {**item, "signature_b64": b64(signature), "data_b64": b64(b"other")},
        {**item, "signature_b64": b64(signature), "certificate_pem": "not a certificate"},
    ]
    r = env.client.post("/v1/verify/signature:batch", json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["report"]["indication"] == "TOTAL_PASSED"
    assert results[1]["report"]["sub_indication"] == "SIG_CRYPTO_FAILURE"
    assert results[2]["report"] is None and results[2]["error"]["code"] == "bad_request_asn1"


@pytest.mark.parametrize("count", [0, 101])
def test_batch_bounds(tmp_path: Path, count: int) -> None:
    env = env_with_outside_root(tmp_path)
    r = env.client.post("/v1/verify/cms:batch", json={"items": [{"cms_b64": "AAAA"}] * count})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("at", "sub"),
    [("2045-01-01T00:00:00Z", "EXPIRED"), ("2024-06-01T00:00:00Z", "NOT_YET_VALID")],
)
def test_certificate_outside_its_validity(tmp_path: Path, at: str, sub: str) -> None:
    env = env_with_outside_root(tmp_path)
    body = {"certificate_pem": pem(outside().leaf), "chain_pem": pem(outside().sub), "at": at}
    r = env.client.post("/v1/verify/certificate", json=body)
    assert (r.json()["indication"], r.json()["sub_indication"]) == ("TOTAL_FAILED", sub)
    assert r.json()["time_source"] == "requested"


def test_malformed_tokens_and_batches_are_format_failures_fast(tmp_path: Path) -> None:
    import time

    from tests.test_verify_cms import _malformed

    env = env_with_outside_root(tmp_path)
    env.client.get("/healthz")  # the test client's first request starts its event loop
    # Bodies past max_body_bytes (1 MiB) are 413 before any parsing (test_api_verify).
    blobs = {k: v for k, v in _malformed().items() if len(v) < 300_000}
    for name, blob in blobs.items():
        started = time.monotonic()
        r = env.client.post("/v1/verify/timestamp", json={"token_b64": b64(blob)})
        assert time.monotonic() - started < 1.0, name
        assert r.status_code == 200, (name, r.text)
        assert r.json()["sub_indication"] == "FORMAT_FAILURE", name
    started = time.monotonic()
    r = env.client.post(
        "/v1/verify/cms:batch",
        json={"items": [{"cms_b64": b64(b)} for b in blobs.values() if len(b) < 50_000]},
    )
    assert time.monotonic() - started < 1.0 * len(blobs)
    assert {x["report"]["sub_indication"] for x in r.json()["results"]} == {"FORMAT_FAILURE"}


def test_certificate_route_uses_the_service_ocsp(tmp_path: Path) -> None:
    env = env_with_tsa_root(tmp_path)
    _, cert, serial = issued_signer(env)
    pem_text = x509_pem(cert)
    body = {"certificate_pem": pem_text, "revocation_mode": "require"}
    r = env.client.post("/v1/verify/certificate", json=body)
    assert r.status_code == 200 and r.json()["indication"] == "TOTAL_PASSED", r.text
    leaf = [
        e for e in r.json()["revocation"] if e["certificate_serial"] == f"{cert.serial_number:x}"
    ]
    assert [(e["source"], e["status"]) for e in leaf] == [("ocsp", "good")]
    services(env).ca().revoke(serial, "key_compromise")
    r = env.client.post("/v1/verify/certificate", json=body)
    assert (r.json()["indication"], r.json()["sub_indication"]) == ("TOTAL_FAILED", "REVOKED")
    leaf = [
        e for e in r.json()["revocation"] if e["certificate_serial"] == f"{cert.serial_number:x}"
    ]
    assert [(e["source"], e["status"]) for e in leaf] == [("ocsp", "revoked")]
    # With revocation_mode none nothing is asked.
    r = env.client.post("/v1/verify/certificate", json={**body, "revocation_mode": "none"})
    assert r.json()["indication"] == "TOTAL_PASSED" and r.json()["revocation"] == []


def x509_pem(cert: x509.Certificate) -> str:
    from asn1crypto import pem as asn1_pem

    return asn1_pem.armor("CERTIFICATE", cert.dump()).decode()
