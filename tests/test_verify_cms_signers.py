"""Every SignerInfo of a SignedData is validated: one report per signer in ``signers``,
the worst verdict on top (the deciding signer's report), the same in the API's JSON, the
CLI's text, a signed report and an evidence bundle."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from typer.testing import CliRunner

from api.cli.main import app
from tests.api_support import make_env
from tests.test_verify_cms import CONTENT, NOW, pki, verify
from tests.validation_support import (
    PycaNode,
    PycaPki,
    cosign,
    pyca_cert,
    pyca_cms,
    pyca_key,
    pyca_pki,
    tamper_signature,
)
from trust.clock import FakeClock
from trust.settings import get_settings
from trust.validation import (
    CheckStatus,
    Indication,
    SubIndication,
    ValidationReport,
    render_text,
    verify_cms_detailed,
)
from trust.validation.evidence import build_evidence, reverify


@cache
def second_signer() -> PycaNode:
    """Another signer under the same sub CA as ``pki().leaf``."""
    return pyca_cert("Second Signer", pyca_key("ecdsa"), pki().sub)


@cache
def stranger() -> PycaPki:
    return pyca_pki("ecdsa")


def good() -> bytes:
    return pyca_cms(pki().leaf, CONTENT)


def bad() -> bytes:
    return tamper_signature(pyca_cms(second_signer(), CONTENT))


def test_each_signer_is_validated_and_the_worst_decides() -> None:
    report = verify(cosign(good(), bad()))
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SIG_CRYPTO_FAILURE,
    )
    first, second = report.signers
    assert first.indication is Indication.TOTAL_PASSED, render_text(first)
    assert first.signer is not None and "Test Leaf" in first.signer.subject
    assert second.indication is Indication.TOTAL_FAILED
    assert second.check("signature").status is CheckStatus.FAILED
    assert second.check("certificate_chain").status is CheckStatus.PASSED
    # The report on top is the deciding signer's, with a warning naming it.
    assert report.signer == second.signer and report.checks == second.checks
    assert report.warnings[0].code == "cms.signers"
    assert "signer 2" in report.warnings[0].message
    assert not first.signers and not second.signers


def test_order_does_not_change_the_verdict_and_ties_go_to_the_first() -> None:
    report = verify(cosign(bad(), good()))
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert "signer 1" in report.warnings[0].message
    both_good = verify(cosign(good(), pyca_cms(second_signer(), CONTENT)))
    assert both_good.indication is Indication.TOTAL_PASSED
    assert [s.indication for s in both_good.signers] == [Indication.TOTAL_PASSED] * 2
    assert both_good.signer == both_good.signers[0].signer


def test_an_unknown_signer_makes_it_indeterminate() -> None:
    report = verify(cosign(good(), pyca_cms(stranger().leaf, CONTENT)))
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert [s.indication for s in report.signers] == [
        Indication.TOTAL_PASSED,
        Indication.INDETERMINATE,
    ]
    # A failure outranks it whatever the order.
    assert verify(cosign(bad(), pyca_cms(stranger().leaf, CONTENT))).indication is (
        Indication.TOTAL_FAILED
    )


def test_one_signer_is_its_own_entry() -> None:
    report = verify(good())
    assert report.indication is Indication.TOTAL_PASSED
    assert len(report.signers) == 1
    assert report.signers[0] == report.model_copy(update={"signers": ()})
    assert not any(w.code == "cms.signers" for w in report.warnings)


def test_a_report_cannot_hide_a_worse_signer() -> None:
    report = verify(cosign(good(), bad()))
    data = json.loads(report.model_dump_json())
    first = data["signers"][0]
    lying = {**first, "signers": data["signers"]}  # the good signer's report on top
    with pytest.raises(ValidationError, match="worst of the signers"):
        ValidationReport.model_validate(lying)
    assert ValidationReport.model_validate(data) == report


def test_text_form_shows_every_signer() -> None:
    text = render_text(verify(cosign(good(), bad())))
    assert "indication:      TOTAL_FAILED / SIG_CRYPTO_FAILURE (the worst" in text
    assert "Signer 1 of 2: TOTAL_PASSED" in text
    assert "Signer 2 of 2: TOTAL_FAILED / SIG_CRYPTO_FAILURE" in text
    assert text.count("Checks performed") == 2
    assert "CN=Second Signer" in text and "CN=Test Leaf" in text


def test_evidence_bundle_names_every_signers_anchor_and_reverifies() -> None:
    p = pki()
    der = cosign(good(), pyca_cms(stranger().leaf, CONTENT))
    anchors = [p.root.der, stranger().root.der]
    intermediates = [p.sub.der, stranger().sub.der]
    done = verify_cms_detailed(
        der, anchors=anchors, intermediates=intermediates, clock=FakeClock(NOW)
    )
    assert done.report.indication is Indication.TOTAL_PASSED
    bundle = build_evidence(der, done, created_at=NOW)
    assert len(bundle.trust_anchors_sha256) == 2
    again = reverify(der, None, bundle, anchors=bundle.anchors(), clock=FakeClock(NOW))
    assert again == done.report


def _pem(node: PycaNode) -> str:
    return node.cert.public_bytes(serialization.Encoding.PEM).decode()


def test_api_answers_one_entry_per_signer(tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_text(_pem(pki().root) + _pem(pki().sub))
    env = make_env(tmp_path, trust_anchor_files=[roots])
    env.clock.set(NOW)
    cms_b64 = base64.b64encode(cosign(good(), bad())).decode()
    r = env.client.post("/v1/verify/cms", json={"cms_b64": cms_b64})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["indication"], body["sub_indication"]) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")
    assert [s["indication"] for s in body["signers"]] == ["TOTAL_PASSED", "TOTAL_FAILED"]
    r = env.client.post("/v1/verify/cms:batch", json={"items": [{"cms_b64": cms_b64}]})
    assert [s["indication"] for s in r.json()["results"][0]["report"]["signers"]] == [
        "TOTAL_PASSED",
        "TOTAL_FAILED",
    ]


def test_cli_prints_every_signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TRUST_TRUST_ANCHOR_FILES", raising=False)
    get_settings.cache_clear()
    try:
        signed = tmp_path / "cosigned.p7"
        signed.write_bytes(cosign(good(), bad()))
        root, sub = tmp_path / "root.pem", tmp_path / "sub.pem"
        root.write_text(_pem(pki().root))
        sub.write_text(_pem(pki().sub))
        args = ["verify", str(signed), "--anchor", str(root), "--intermediate", str(sub)]
        result = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "Signer 1 of 2: " in result.output and "Signer 2 of 2: " in result.output
