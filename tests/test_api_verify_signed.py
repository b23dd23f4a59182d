"""Signed validation reports (?signed=true): CMS by the service's report-signing key over
the report's canonical JSON, checked with verify_cms and the pure-Python SM2 backend."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from asn1crypto import x509

from api.deps import Services
from ca.service import ensure_default_hierarchy
from tests.api_support import ApiEnv, make_env
from tests.validation_support import pyca_cms, pyca_pki
from trust.audit import AuditLog
from trust.sm2.select import get_backend
from trust.validation import Indication, ValidationReport, render_text, verify_cms
from trust.validation.certs import load_certificate
from trust.validation.signed_report import open_signed_report, report_json


def initialised(tmp_path: Path) -> tuple[ApiEnv, list[x509.Certificate]]:
    env = make_env(tmp_path)
    services = env.app.state.services
    assert isinstance(services, Services)
    cas = ensure_default_hierarchy(services.ca(), env.settings)
    roots = [load_certificate(c.certificate_pem.encode()) for c in cas if c.parent_id is None]
    return env, roots


def signed(env: ApiEnv, path: str, body: dict[str, Any]) -> tuple[ValidationReport, bytes]:
    r = env.client.post(f"{path}?signed=true", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    return ValidationReport.model_validate(answer["report"]), base64.b64decode(
        answer["signed_report_b64"]
    )


def test_signed_report_verifies_and_covers_the_json(tmp_path: Path) -> None:
    env, roots = initialised(tmp_path)
    cms = pyca_cms(pyca_pki("ecdsa").leaf, b"some content")
    report, signed_cms = signed(env, "/v1/verify/cms", {"cms_b64": base64.b64encode(cms).decode()})
    assert report.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"  # an outside root

    # The CMS covers exactly the canonical JSON of the report that was returned.
    assert open_signed_report(signed_cms) == report
    from trust.cms import verify_signed_data

    assert verify_signed_data(signed_cms).content == report_json(report)
    for backend in ("openssl", "pure"):  # the pure gmssl engine is an independent check
        check = verify_cms(
            signed_cms, anchors=roots, clock=env.clock, sm2_backend=get_backend(backend)
        )
        assert check.indication is Indication.TOTAL_PASSED, render_text(check)
        assert check.signer is not None and "Verification Reports" in check.signer.subject

    # A changed byte of the JSON breaks it (same length, so the DER still parses).
    tampered = signed_cms.replace(b'"INDETERMINATE"', b'"TOTAL_PASSED!"', 1)
    assert tampered != signed_cms
    assert verify_cms(tampered, anchors=roots, clock=env.clock).sub_indication == "HASH_FAILURE"


def test_one_report_key_reused_and_every_signature_audited(tmp_path: Path) -> None:
    env, _ = initialised(tmp_path)
    body = {"token_b64": base64.b64encode(b"\x30\x00").decode()}
    _, first = signed(env, "/v1/verify/timestamp", body)
    _, second = signed(env, "/v1/verify/timestamp", body)
    from trust.cms import verify_signed_data

    certs = [verify_signed_data(c).signers[0].certificate for c in (first, second)]
    assert certs[0] is not None and certs[1] is not None
    assert certs[0].dump() == certs[1].dump()
    audit = AuditLog(env.db, env.clock)
    signs = [
        r for r in audit.tail(50) if r.action.startswith("key.sign") and r.actor == "verify-service"
    ]
    assert signs, [r.action for r in audit.tail(50)]


def test_signed_without_a_ca_is_ca_not_found(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    cms = pyca_cms(pyca_pki("ecdsa").leaf, b"x")
    r = env.client.post(
        "/v1/verify/cms?signed=true", json={"cms_b64": base64.b64encode(cms).decode()}
    )
    assert (r.status_code, r.json()["code"]) == (404, "ca_not_found"), r.text
    assert "trustctl init" in r.json()["detail"]
    plain = env.client.post("/v1/verify/cms", json={"cms_b64": base64.b64encode(cms).decode()})
    assert plain.status_code == 200 and "indication" in plain.json()


def _report_certificate(signed_cms: bytes) -> x509.Certificate:
    from trust.cms import verify_signed_data

    cert = verify_signed_data(signed_cms).signers[0].certificate
    assert cert is not None
    return cert


def test_report_certificate_has_the_report_signer_profile(tmp_path: Path) -> None:
    env, roots = initialised(tmp_path)
    body = {"token_b64": base64.b64encode(b"\x30\x00").decode()}
    _, signed_cms = signed(env, "/v1/verify/timestamp", body)
    cert = _report_certificate(signed_cms)
    assert set(cert.key_usage_value.native) == {"digital_signature", "non_repudiation"}
    assert cert.extended_key_usage_value is None and not cert.ca
    services = env.app.state.services
    (record,) = services.ca().list_certificates(profile="report_signer")
    assert int(record.serial_hex, 16) == cert.serial_number
    assert not services.ca().list_certificates(profile="seal_maker")
    check = verify_cms(signed_cms, anchors=roots, clock=env.clock)
    assert check.indication is Indication.TOTAL_PASSED, render_text(check)


def test_a_store_from_before_the_profile_keeps_its_key(tmp_path: Path) -> None:
    """A report key certified under seal_maker (as before report_signer existed) is
    certified again under report_signer and goes on signing."""
    from api.report_signing import REPORT_ACTOR, REPORT_KEY_LABEL
    from ca.issue import IssueRequest
    from keystore.model import Algorithm, GenerateRequest, Purpose

    env, roots = initialised(tmp_path)
    services = env.app.state.services
    ca, keystore = services.ca(), services.keystore()
    key = keystore.generate(
        GenerateRequest(REPORT_KEY_LABEL, Algorithm.SM2, Purpose.SIGN), REPORT_ACTOR
    )
    issuing = next(c for c in ca.list_cas() if c.name == env.settings.ca_default_sm2_issuing_name)
    spki = keystore.public_key(key.id).spki_der
    subject = {
        "country_name": "CN",
        "organization_name": env.settings.ca_default_organization,
        "common_name": f"{env.settings.ca_default_organization} Verification Reports",
    }
    ca.issue(IssueRequest(issuing.id, "seal_maker", public_key=spki, subject=subject))

    body = {"token_b64": base64.b64encode(b"\x30\x00").decode()}
    _, signed_cms = signed(env, "/v1/verify/timestamp", body)
    cert = _report_certificate(signed_cms)
    assert cert.public_key.dump() == spki  # the same key, no new one
    assert [k.id for k in keystore.list_keys(REPORT_ACTOR) if k.label == REPORT_KEY_LABEL] == [
        key.id
    ]
    (record,) = ca.list_certificates(profile="report_signer")
    assert int(record.serial_hex, 16) == cert.serial_number
    assert len(ca.list_certificates(profile="seal_maker")) == 1  # left as it was
    check = verify_cms(signed_cms, anchors=roots, clock=env.clock)
    assert check.indication is Indication.TOTAL_PASSED, render_text(check)
