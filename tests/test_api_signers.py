"""Signers over HTTP: create, read, disable; raw and CMS signing (batch too), signature
timestamps from an in-process TSA; grants narrowed to signers; refusals with codes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp, x509

from tests.api_support import ApiEnv, make_env
from tests.signers_support import api_hierarchy, api_signer, operator_headers
from tests.test_api_keys import b64, problem
from tests.tsa_support import authority
from timestamp.verify import verify_token
from trust.auth import Grant, Role
from trust.cms import verify_signed_data
from trust.cms.algorithms import digest
from trust.keys import KeyAlgorithm
from trust.sm2.select import get_backend


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    return make_env(tmp_path)


@pytest.fixture
def operator(env: ApiEnv) -> dict[str, str]:
    return operator_headers(env)


@pytest.fixture
def sm2_signer(env: ApiEnv, operator: dict[str, str]) -> dict[str, Any]:
    return api_signer(env, operator, api_hierarchy(env, KeyAlgorithm.SM2)[1])


def _user(env: ApiEnv, signer_id: str | None = None) -> dict[str, str]:
    if signer_id is None:
        return env.headers(Grant(Role.signer))
    return env.headers(Grant.narrowed(Role.signer, [signer_id], "signer"))


def _cert_public(signer: dict[str, Any]) -> bytes:
    pem_text = signer["certificate_pem"].split("-----")[2]
    return x509.Certificate.load(base64.b64decode(pem_text)).public_key["public_key"].native


def test_create_show_list(
    env: ApiEnv, operator: dict[str, str], sm2_signer: dict[str, Any]
) -> None:
    sid = sm2_signer["id"]
    assert sm2_signer["source"] == "issued" and sm2_signer["status"] == "active"
    assert sm2_signer["algorithm"] == "SM2" and sm2_signer["chain_pem"].count("BEGIN") == 2
    shown = env.client.get(f"/v1/signers/{sid}", headers=_user(env, sid))
    assert shown.status_code == 200 and shown.json() == sm2_signer
    listed = env.client.get("/v1/signers", headers=operator).json()["signers"]
    assert [s["id"] for s in listed] == [sid]
    problem(
        env.client.get("/v1/signers/sgn_000000000000000000000000", headers=operator),
        404,
        "signer_not_found",
    )


def test_create_refusals(env: ApiEnv, operator: dict[str, str]) -> None:
    _, sub = api_hierarchy(env, KeyAlgorithm.SM2)
    key = env.client.post(
        "/v1/keys", json={"algorithm": "SM2", "purpose": "sign", "label": "k"}, headers=operator
    ).json()["id"]
    body = {
        "label": "x",
        "key_id": key,
        "issue": {"ca_id": sub.id, "profile": "person", "subject": {"CN": "甲"}},
    }
    key_admin = env.headers(Grant(Role.key_admin))
    problem(env.client.post("/v1/signers", json=body, headers=key_admin), 403, "forbidden")
    ca_operator = env.headers(Grant(Role.ca_operator))
    problem(env.client.post("/v1/signers", json=body, headers=ca_operator), 403, "forbidden")
    other_key = env.headers(Grant.narrowed(Role.key_admin, ["key_other"]), Grant(Role.ca_operator))
    problem(env.client.post("/v1/signers", json=body, headers=other_key), 403, "forbidden")
    problem(
        env.client.post("/v1/signers", json={**body, "certificate_pem": "x"}, headers=operator),
        422,
        "validation_failed",
    )
    problem(
        env.client.post(
            "/v1/signers",
            json={"label": "x", "key_id": key, "certificate_pem": "junk"},
            headers=operator,
        ),
        400,
        "bad_request_asn1",
    )
    tsa_key = env.client.post(
        "/v1/keys", json={"algorithm": "SM2", "purpose": "tsa", "label": "k"}, headers=operator
    ).json()["id"]
    problem(
        env.client.post("/v1/signers", json={**body, "key_id": tsa_key}, headers=operator),
        400,
        "key_purpose_mismatch",
    )
    assert env.client.get("/v1/signers", headers=operator).json()["signers"] == []


def test_raw_sign_and_batch(env: ApiEnv, sm2_signer: dict[str, Any]) -> None:
    sid = sm2_signer["id"]
    headers = _user(env, sid)
    r = env.client.post(
        f"/v1/signers/{sid}/sign",
        json={"data_b64": b64(b"hi"), "signer_id": "alice"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["signer_id"] == sid and r.json()["algorithm"] == "SM2"
    pure = get_backend("pure").load_public(_cert_public(sm2_signer))
    pure.verify(b"hi", base64.b64decode(r.json()["signature_b64"]), b"alice")
    r = env.client.post(
        f"/v1/signers/{sid}/sign:batch",
        json={"items": [{"data_b64": b64(b"a")}, {"data_b64": b64(b"b")}]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    for data, item in zip((b"a", b"b"), r.json()["items"], strict=True):
        pure.verify(data, base64.b64decode(item["signature_b64"]))


def test_grants_are_narrowed_to_signers(
    env: ApiEnv, operator: dict[str, str], sm2_signer: dict[str, Any]
) -> None:
    sid = sm2_signer["id"]
    other = api_signer(env, operator, api_hierarchy(env, KeyAlgorithm.ECDSA_P256)[1], "ECDSA-P256")
    body = {"data_b64": b64(b"x")}
    wrong_signer = _user(env, other["id"])
    problem(
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=wrong_signer),
        403,
        "forbidden",
    )
    problem(
        env.client.post(f"/v1/signers/{sid}/cms", json=body, headers=wrong_signer), 403, "forbidden"
    )
    on_the_key = env.headers(Grant.narrowed(Role.signer, [sm2_signer["key_id"]]))
    problem(
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=on_the_key), 403, "forbidden"
    )
    problem(
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=operator), 403, "forbidden"
    )

    # Listing: a token narrowed to signers sees exactly those; a grant narrowed to keys
    # names no signer and is refused; an unnarrowed grant sees all.
    def listed(headers: dict[str, str]) -> list[str]:
        r = env.client.get("/v1/signers", headers=headers)
        assert r.status_code == 200, r.text
        return sorted(s["id"] for s in r.json()["signers"])

    assert listed(_user(env, sid)) == [sid]
    assert listed(wrong_signer) == [other["id"]]
    both = env.headers(
        Grant.narrowed(Role.signer, [sid], "signer"),
        Grant.narrowed(Role.key_admin, [other["id"], "sgn_000000000000000000000000"], "signer"),
    )
    assert listed(both) == sorted([sid, other["id"]])
    assert listed(_user(env)) == listed(operator) == sorted([sid, other["id"]])
    problem(env.client.get("/v1/signers", headers=on_the_key), 403, "forbidden")
    verifier_only = env.headers(Grant(Role.verifier))
    problem(env.client.get("/v1/signers", headers=verifier_only), 403, "forbidden")
    assert (
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=_user(env)).status_code == 200
    )
    assert (
        env.client.post(
            f"/v1/signers/{other['id']}/cms", json=body, headers=wrong_signer
        ).status_code
        == 200
    )


def test_disabled_signer_and_suspended_key(
    env: ApiEnv, operator: dict[str, str], sm2_signer: dict[str, Any]
) -> None:
    sid = sm2_signer["id"]
    headers = _user(env, sid)
    body = {"data_b64": b64(b"x")}
    problem(
        env.client.post(f"/v1/signers/{sid}/status", json={"status": "disabled"}, headers=headers),
        403,
        "forbidden",
    )
    r = env.client.post(f"/v1/signers/{sid}/status", json={"status": "disabled"}, headers=operator)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    problem(
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=headers),
        409,
        "signer_disabled",
    )
    problem(
        env.client.post(f"/v1/signers/{sid}/cms", json=body, headers=headers),
        409,
        "signer_disabled",
    )
    env.client.post(f"/v1/signers/{sid}/status", json={"status": "active"}, headers=operator)
    key_id = sm2_signer["key_id"]
    r = env.client.post(f"/v1/keys/{key_id}/state", json={"state": "suspended"}, headers=operator)
    assert r.status_code == 200, r.text
    problem(
        env.client.post(f"/v1/signers/{sid}/sign", json=body, headers=headers), 409, "key_suspended"
    )
    problem(
        env.client.post(f"/v1/signers/{sid}/cms", json=body, headers=headers), 409, "key_suspended"
    )


def test_cms_sm2_and_bad_input(env: ApiEnv, sm2_signer: dict[str, Any]) -> None:
    sid = sm2_signer["id"]
    headers = _user(env, sid)
    r = env.client.post(
        f"/v1/signers/{sid}/cms",
        json={"data_b64": b64(b"doc"), "detached": True, "include_chain": True},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    der = base64.b64decode(r.json()["cms_b64"])
    info = cms.ContentInfo.load(der)
    assert info["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"
    assert len(info["content"]["certificates"]) == 3
    si = info["content"]["signer_infos"][0]
    get_backend("pure").load_public(_cert_public(sm2_signer)).verify(
        b"\x31" + si["signed_attrs"].dump()[1:], si["signature"].native
    )
    assert verify_signed_data(der, content=b"doc").ok
    r = env.client.post(
        f"/v1/signers/{sid}/cms",
        json={"data_b64": b64(b"doc"), "profile": "rfc5652"},
        headers=headers,
    )
    assert (
        cms.ContentInfo.load(base64.b64decode(r.json()["cms_b64"]))["content_type"].native
        == "signed_data"
    )
    problem(
        env.client.post(f"/v1/signers/{sid}/cms", json={"data_b64": "!!"}, headers=headers),
        422,
        "validation_failed",
    )
    problem(
        env.client.post(
            f"/v1/signers/{sid}/cms", json={"data_b64": "", "profile": "x"}, headers=headers
        ),
        422,
        "validation_failed",
    )
    r = env.client.post(
        f"/v1/signers/{sid}/cms:batch",
        json={"items": [{"data_b64": b64(b"1")}, {"data_b64": b64(b"2")}], "detached": True},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    for content, item in zip((b"1", b"2"), r.json()["items"], strict=True):
        assert verify_signed_data(base64.b64decode(item["cms_b64"]), content=content).ok


def test_cms_with_signature_timestamp(env: ApiEnv, operator: dict[str, str]) -> None:
    env.app.state.services._tsa = authority(env.db)  # the in-process TSA of tests/tsa_support
    for algorithm, hash_name in (("SM2", "sm3"), ("ECDSA-P256", "sha256")):
        ca_alg = KeyAlgorithm.SM2 if algorithm == "SM2" else KeyAlgorithm.ECDSA_P256
        issuing = api_hierarchy(env, ca_alg)[1]
        signer = api_signer(env, operator, issuing, algorithm)
        sid = signer["id"]
        r = env.client.post(
            f"/v1/signers/{sid}/cms",
            json={"data_b64": b64(b"doc"), "timestamp": True},
            headers=_user(env, sid),
        )
        assert r.status_code == 200, r.text
        si = cms.ContentInfo.load(base64.b64decode(r.json()["cms_b64"]))["content"]["signer_infos"][
            0
        ]
        (attr,) = si["unsigned_attrs"]
        assert attr["type"].native == "signature_time_stamp_token"
        token = attr["values"][0]
        tst = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].parsed.dump())
        imprint = tst["message_imprint"]
        assert imprint["hashed_message"].native == digest(hash_name, si["signature"].native)
        checked = verify_token(token.dump(), data=si["signature"].native)
        assert checked.ok and checked.imprint_ok and checked.hash_algorithm == hash_name


def test_service_verifier_passes_our_cms(env: ApiEnv, sm2_signer: dict[str, Any]) -> None:
    """The verification route (another implementation path: pyhanko-certvalidator) gives
    TOTAL_PASSED for an SM2 CMS of ours up to the service's own root."""
    sid = sm2_signer["id"]
    r = env.client.post(
        f"/v1/signers/{sid}/cms",
        json={"data_b64": b64(b"doc"), "detached": True, "include_chain": True},
        headers=_user(env, sid),
    )
    verifier = env.headers(Grant(Role.verifier))
    body = {"cms_b64": r.json()["cms_b64"], "data_b64": b64(b"doc")}
    report = env.client.post("/v1/verify/cms", json=body, headers=verifier)
    assert report.status_code == 200, report.text
    assert report.json()["indication"] == "TOTAL_PASSED", report.json()
    tampered = env.client.post(
        "/v1/verify/cms", json={**body, "data_b64": b64(b"dox")}, headers=verifier
    )
    assert tampered.json()["indication"] == "TOTAL_FAILED"


def test_cms_timestamp_without_a_tsa_unit_is_refused_before_signing(
    env: ApiEnv, sm2_signer: dict[str, Any]
) -> None:
    # make_env's service has no TSA unit (no `trustctl init`).
    from trust.audit import AuditLog

    sid = sm2_signer["id"]
    audit = AuditLog(env.db, env.clock)
    before = max(r.seq for r in audit.tail(1))
    for path, body in (
        ("cms", {"data_b64": b64(b"doc"), "timestamp": True}),
        ("cms:batch", {"items": [{"data_b64": b64(b"doc")}], "timestamp": True}),
    ):
        r = env.client.post(f"/v1/signers/{sid}/{path}", json=body, headers=_user(env, sid))
        problem(r, 409, "tsa_unit_unavailable")
        assert "no TSA unit" in r.json()["detail"] or "no default TSA unit" in r.json()["detail"]
    added = [r for r in audit.tail(1000) if r.seq > before and r.action != "token.create"]
    # Only the refusals are recorded: the key store made and recorded no signature.
    assert [(r.action, r.outcome) for r in added] == [("signer.cms", "failure")] * 2, added
    assert all(r.details == {"code": "tsa_unit_unavailable"} for r in added)
    # Without the timestamp the same request signs.
    r = env.client.post(
        f"/v1/signers/{sid}/cms", json={"data_b64": b64(b"doc")}, headers=_user(env, sid)
    )
    assert r.status_code == 200, r.text
