"""The seals API: the lifecycle by seal officers (the applicant cannot approve), the .esl
download, stamping by a signer granted the seal, verification (public) and the public
status check with its cache headers; wrong grants and bad input refused with codes."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import pem

from ca.service import CreateCaRequest
from ca.signers import CreateSignerRequest, IssueSpec
from keystore.model import Actor, Algorithm, GenerateRequest, Purpose
from seals.parse import parse_seal, parse_signature
from tests.api_support import ApiEnv, make_env
from tests.seals_helpers import PNG
from trust.audit import AuditLog
from trust.auth import Grant, Role
from trust.keys import KeyAlgorithm
from trust.sm3 import sm3

PROBLEM = "application/problem+json"
ADMIN = Actor("test-admin", frozenset({"key_admin", "ca_operator"}))
DATA = "电子证照 2026".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == code, r.json()


class Seals:
    """An app with the default SM2 CAs, one signer, and tokens for each party."""

    def __init__(self, env: ApiEnv) -> None:
        self.env = env
        services = env.app.state.services
        ca = services.ca()
        settings = env.settings
        root = ca.create_ca(CreateCaRequest(settings.ca_default_sm2_root_name, KeyAlgorithm.SM2))
        issuing = ca.create_ca(
            CreateCaRequest(
                settings.ca_default_sm2_issuing_name, KeyAlgorithm.SM2, parent_id=root.id
            )
        )
        self.issuing_id = issuing.id
        self.signer_id, self.signer_cert = self.add_signer("signer-1")
        self.officer_a = env.headers(Grant(Role.seal_officer))
        self.officer_b = env.headers(Grant(Role.seal_officer))

    def add_signer(self, label: str) -> tuple[str, bytes]:
        services = self.env.app.state.services
        key = services.keystore().generate(
            GenerateRequest(label=label, algorithm=Algorithm.SM2, purpose=Purpose.SEAL), ADMIN
        )
        spec = IssueSpec(self.issuing_id, "seal_signer", {"C": "CN", "O": "某单位", "CN": label})
        info = services.signers().create(CreateSignerRequest(label, key.id, issue=spec), ADMIN)
        return info.id, info.certificate_der

    def apply_body(self, **fields: Any) -> dict[str, Any]:
        now = self.env.clock.now()
        body: dict[str, Any] = {
            "type": "contract",
            "name": "某单位合同专用章",
            "organization": "某单位",
            "image_b64": b64(PNG),
            "image_type": "PNG",
            "width_mm": 42,
            "height_mm": 42,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=365)).isoformat(),
            "signer_certificates_pem": [pem.armor("CERTIFICATE", self.signer_cert).decode()],
        }
        body.update(fields)
        return body

    def active_seal(self, **fields: Any) -> str:
        client = self.env.client
        r = client.post("/v1/seals", json=self.apply_body(**fields), headers=self.officer_a)
        assert r.status_code == 201, r.text
        esid: str = r.json()["esid"]
        assert client.post(f"/v1/seals/{esid}/approve", headers=self.officer_b).status_code == 200
        r = client.post(f"/v1/seals/{esid}/make", headers=self.officer_b)
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        return esid

    def stamper(self, esid: str) -> dict[str, str]:
        return self.env.headers(Grant(Role.signer, "seal", frozenset({esid})))

    def stamp(
        self, esid: str, headers: dict[str, str] | None = None, **fields: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "signer": self.signer_id,
            "data_b64": b64(DATA),
            "property_info": "/Doc_0/Signs/Sign_0/Signature.xml",
        }
        body.update(fields)
        return self.env.client.post(
            f"/v1/seals/{esid}/stamp", json=body, headers=headers or self.stamper(esid)
        )


@pytest.fixture
def seals(tmp_path: Path) -> Seals:
    return Seals(make_env(tmp_path))


def test_lifecycle_stamp_and_verify_over_http(seals: Seals) -> None:
    client = seals.env.client
    r = client.post(
        "/v1/seals", json=seals.apply_body(esid="1101990000001"), headers=seals.officer_a
    )
    assert r.status_code == 201 and r.headers["location"] == "/v1/seals/1101990000001"
    esid = r.json()["esid"]
    assert r.json()["status"] == "applied" and r.json()["type_code"] == 4
    problem(
        client.post(f"/v1/seals/{esid}/approve", headers=seals.officer_a),
        409,
        "seal_approval_refused",
    )
    problem(
        client.post(f"/v1/seals/{esid}/make", headers=seals.officer_b), 409, "seal_state_conflict"
    )
    problem(
        client.get(f"/v1/seals/{esid}/eseal", headers=seals.officer_b), 409, "seal_state_conflict"
    )
    assert (
        client.post(f"/v1/seals/{esid}/approve", headers=seals.officer_b).json()["status"]
        == "approved"
    )
    made = client.post(f"/v1/seals/{esid}/make", headers=seals.officer_b).json()
    assert made["status"] == "active" and made["made"] and made["approvals"]

    r = client.get(f"/v1/seals/{esid}/eseal", headers=seals.officer_a)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="{esid}.esl"'
    parsed = parse_seal(r.content)
    assert parsed.info.es_id == esid and parsed.info.property.certificates == (seals.signer_cert,)

    r = seals.stamp(esid)
    assert r.status_code == 200, r.text
    signature = base64.b64decode(r.json()["signature_b64"])
    assert parse_signature(signature).seal.der == parsed.der
    assert r.json()["timestamped"] is False
    assert (r.json()["signer_revocation"], r.json()["signer_revocation_source"]) == (
        "good",
        "CA records",
    )

    r = client.post(
        "/v1/verify/seal-signature",
        json={
            "signature_b64": b64(signature),
            "data_b64": b64(DATA),
            "revocation_mode": "require",
        },
    )
    report = r.json()
    assert r.status_code == 200 and report["indication"] == "passed", report
    assert report["validated_object"] == "seal_signature" and report["version"] == "V4"
    assert "seal_status" in report["performed"] and report["not_performed"] == []
    r = client.post(
        "/v1/verify/seal-signature",
        json={"signature_b64": b64(signature), "sm3_b64": b64(sm3(b"other"))},
    )
    assert (r.json()["indication"], r.json()["sub_indication"]) == ("failed", "DATA_HASH_MISMATCH")
    r = client.post("/v1/verify/seal", json={"eseal_b64": b64(parsed.der)})
    assert r.json()["indication"] == "passed", r.json()

    # Suspend: stamping stops, the public status says so, verification of the old stamp holds.
    seals.env.clock.advance(60)
    before = seals.env.clock.now()
    seals.env.clock.advance(60)
    r = client.post(f"/v1/seals/{esid}/suspend", json={"reason": "审计"}, headers=seals.officer_b)
    assert r.json()["status"] == "suspended"
    problem(seals.stamp(esid), 409, "seal_not_active")
    r = client.get(f"/v1/seals/{esid}/status")
    assert r.json()["status"] == "suspended" and r.headers["cache-control"] == "public, max-age=10"
    r = client.get(f"/v1/seals/{esid}/status", params={"at": before.isoformat()})
    assert r.json()["status"] == "active" and r.headers["cache-control"] == "public, max-age=86400"
    r = client.post(
        "/v1/verify/seal-signature", json={"signature_b64": b64(signature), "data_b64": b64(DATA)}
    )
    assert r.json()["indication"] == "passed"
    assert (
        client.post(f"/v1/seals/{esid}/resume", headers=seals.officer_a).json()["status"]
        == "active"
    )
    assert (
        client.post(f"/v1/seals/{esid}/revoke", headers=seals.officer_a).json()["status"]
        == "revoked"
    )

    history = client.get(f"/v1/seals/{esid}/history", headers=seals.officer_a).json()["history"]
    assert [h["status"] for h in history] == [
        "applied", "approved", "made", "active", "suspended", "active", "revoked",
    ]  # fmt: skip
    assert history[4]["reason"] == "审计"
    listed = client.get("/v1/seals", params={"status": "revoked"}, headers=seals.officer_a).json()
    assert [s["esid"] for s in listed["items"]] == [esid] and listed["next_offset"] is None
    audit = seals.env.app.state.services.audit.tail(100)
    assert {r.action for r in audit} >= {
        "seal.apply", "seal.approve", "seal.make", "seal.stamp", "seal.suspend", "seal.revoke",
    }  # fmt: skip


def test_stamping_needs_a_grant_on_the_seal_and_signer(seals: Seals) -> None:
    esid = seals.active_seal()
    other = seals.active_seal()
    problem(seals.stamp(esid, seals.stamper(other)), 403, "forbidden")
    problem(seals.stamp(esid, seals.officer_a), 403, "forbidden")
    # A token narrowed to another signer may not stamp as this one.
    second, _ = seals.add_signer("signer-2")
    narrowed = seals.env.headers(
        Grant(Role.signer, "seal", frozenset({esid})),
        Grant(Role.signer, "signer", frozenset({second})),
    )
    problem(seals.stamp(esid, narrowed), 403, "forbidden")
    both = seals.env.headers(
        Grant(Role.signer, "seal", frozenset({esid})),
        Grant(Role.signer, "signer", frozenset({seals.signer_id})),
    )
    assert seals.stamp(esid, both).status_code == 200
    # Listed signers only: signer-2 is not in the seal.
    problem(seals.stamp(esid, signer=second), 403, "signer_not_in_seal")
    problem(seals.stamp(esid, signer="sgn_000000000000000000000000"), 404, "signer_not_found")
    r = seals.env.client.get(f"/v1/seals/{esid}", headers=seals.stamper(esid))
    assert r.status_code == 200  # a signer may read the seal it may use
    problem(
        seals.env.client.get(f"/v1/seals/{esid}", headers=seals.stamper(other)), 403, "forbidden"
    )


def test_bad_input_is_refused_with_codes(seals: Seals) -> None:
    client, officer = seals.env.client, seals.officer_a
    r = client.post("/v1/seals", json=seals.apply_body(image_b64=b64(b"GIF89a")), headers=officer)
    problem(r, 422, "seal_image_invalid")
    r = client.post("/v1/seals", json=seals.apply_body(image_b64="not base64!"), headers=officer)
    problem(r, 422, "validation_failed")
    r = client.post("/v1/seals", json=seals.apply_body(type="nonsense"), headers=officer)
    problem(r, 422, "validation_failed")
    r = client.post(
        "/v1/seals", json=seals.apply_body(signer_certificates_pem=["junk"]), headers=officer
    )
    assert r.status_code in (400, 422) and r.headers["content-type"] == PROBLEM
    r = client.post(
        "/v1/seals", json=seals.apply_body(valid_to="2020-01-01T00:00:00"), headers=officer
    )
    problem(r, 422, "validation_failed")  # no time zone
    problem(client.get("/v1/seals/no-such-seal", headers=officer), 404, "seal_not_found")
    problem(client.get("/v1/seals/no-such-seal/status"), 404, "seal_not_found")
    problem(client.get("/v1/seals/bad%20id/status"), 422, "validation_failed")
    esid = seals.active_seal()
    problem(seals.stamp(esid, data_b64=None, sm3_b64=None), 422, "validation_failed")
    problem(seals.stamp(esid, data_b64=None, sm3_b64=b64(b"short")), 400, "bad_request_length")
    problem(seals.stamp(esid, property_info="非ASCII"), 422, "validation_failed")
    audit = AuditLog(seals.env.db, seals.env.clock)
    before = max(r.seq for r in audit.tail(1))
    # No TSA unit: refused before the key store signs anything.
    problem(seals.stamp(esid, timestamp=True), 409, "tsa_unit_unavailable")
    assert not [r for r in audit.tail(100) if r.seq > before and r.action.startswith("key.")]
    problem(seals.stamp(esid, revocation_mode="sometimes"), 422, "validation_failed")
    problem(seals.stamp(esid, crls_b64=["not base64!"]), 422, "validation_failed")
    big = seals.env.client.post(
        f"/v1/seals/{esid}/stamp",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={**seals.stamper(esid), "content-type": "application/json"},
    )
    problem(big, 413, "payload_too_large")
    # Malformed objects to verify are reports, not errors.
    r = client.post(
        "/v1/verify/seal-signature", json={"signature_b64": b64(b"\x30\x03\x02\x01\x01")}
    )
    assert r.status_code == 200 and r.json()["sub_indication"] == "UNSUPPORTED_SEAL_VERSION"
    r = client.post("/v1/verify/seal-signature", json={"signature_b64": b64(b"\x30\x80junk")})
    assert r.status_code == 200 and r.json()["sub_indication"] == "FORMAT_FAILURE"
    r = client.post("/v1/verify/seal", json={"eseal_b64": b64(bytes(100))})
    assert r.status_code == 200 and r.json()["indication"] == "failed"
    stored = client.get(f"/v1/seals/{esid}", headers=officer).json()
    assert stored["status"] == "active"  # nothing above changed it


def test_timestamped_stamp_from_the_service_tsa(seals: Seals) -> None:
    from timestamp.registry import UnitPlan

    services = seals.env.app.state.services
    plan = UnitPlan("sm2", KeyAlgorithm.SM2, seals.issuing_id, "2.999.1.1", timedelta(seconds=1))
    services.tsa_units().ensure(plan)
    esid = seals.active_seal()
    r = seals.stamp(esid, timestamp=True)
    assert r.status_code == 200 and r.json()["timestamped"] is True, r.text
    signature = base64.b64decode(r.json()["signature_b64"])
    assert parse_signature(signature).timestamp is not None
    r = seals.env.client.post(
        "/v1/verify/seal-signature", json={"signature_b64": b64(signature), "data_b64": b64(DATA)}
    )
    report = r.json()
    assert report["indication"] == "passed", report
    assert report["proven_time"] is not None
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["signature_timestamp"] == "passed"
