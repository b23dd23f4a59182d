"""The report model: deterministic indication, JSON round trip, text rendering, seal checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from seals.verify import VerificationResult
from trust.validation import (
    SCHEMA_VERSION,
    Check,
    CheckStatus,
    Finding,
    Indication,
    SubIndication,
    TimeSource,
    ValidatedObject,
    ValidationReport,
    combine,
    render_text,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _check(name: str, status: CheckStatus, sub: SubIndication | None = None) -> Check:
    return Check(name=name, status=status, sub_indication=sub, message=f"{name} {status}")


PASSED = _check("signature", CheckStatus.PASSED)
SKIPPED = _check("revocation", CheckStatus.NOT_PERFORMED)


def test_combine_precedence():
    failed_time = _check("certificate_validity", CheckStatus.FAILED, SubIndication.EXPIRED)
    failed_sig = _check("signature", CheckStatus.FAILED, SubIndication.SIG_CRYPTO_FAILURE)
    unsure = _check("revocation", CheckStatus.INDETERMINATE, SubIndication.TRY_LATER)
    no_chain = _check(
        "certificate_chain", CheckStatus.INDETERMINATE, SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    )
    assert combine([PASSED, SKIPPED]).indication is Indication.TOTAL_PASSED
    assert combine([PASSED, unsure, SKIPPED]).sub_indication is SubIndication.TRY_LATER
    # failed beats indeterminate; within a class the sub-indication rank decides,
    # whatever the order of the checks.
    for order in ([unsure, failed_time, failed_sig], [failed_sig, failed_time, unsure]):
        verdict = combine(order)
        assert verdict.indication is Indication.TOTAL_FAILED
        assert verdict.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert combine([unsure, no_chain]).sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    # Nothing performed proves nothing.
    assert combine([SKIPPED]).indication is Indication.INDETERMINATE
    assert combine([]).sub_indication is SubIndication.GENERIC


def test_check_sub_indication_must_match_status():
    with pytest.raises(ValidationError):
        Check(name="x", status=CheckStatus.FAILED, message="no sub-indication")
    with pytest.raises(ValidationError):
        Check(
            name="x",
            status=CheckStatus.PASSED,
            sub_indication=SubIndication.EXPIRED,
            message="passed with a sub-indication",
        )


def _report(*checks: Check) -> ValidationReport:
    return ValidationReport.build(
        validated_object=ValidatedObject.RAW_SIGNATURE,
        checks=checks,
        validation_time=NOW,
        time_source=TimeSource.CURRENT,
        warnings=(Finding(code="revocation.soft_fail", message="no CRL"),),
        hints=(Finding(code="sm2.verifies_without_z", message="hint", details={"a": "b"}),),
    )


def test_json_round_trip_and_schema_version():
    report = _report(PASSED, SKIPPED)
    data = json.loads(report.model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION == "1"
    assert data["indication"] == "TOTAL_PASSED"
    assert data["checks"][1]["status"] == "not_performed"
    again = ValidationReport.model_validate_json(report.model_dump_json())
    assert again == report
    # The model refers to itself (``signers``), so its schema is a $ref into $defs.
    schema = ValidationReport.model_json_schema()
    fields = schema["$defs"]["ValidationReport"]["properties"]
    assert fields["schema_version"]["const"] == "1"
    assert fields["signers"]["items"] == {"$ref": "#/$defs/ValidationReport"}


def test_a_report_cannot_claim_another_indication():
    data = json.loads(
        _report(
            _check("signature", CheckStatus.FAILED, SubIndication.SIG_CRYPTO_FAILURE)
        ).model_dump_json()
    )
    data["indication"], data["sub_indication"] = "TOTAL_PASSED", None
    with pytest.raises(ValidationError):
        ValidationReport.model_validate(data)


def test_render_shows_indication_and_not_performed_checks():
    report = _report(
        PASSED,
        Check(
            name="certificate_chain",
            status=CheckStatus.NOT_PERFORMED,
            message="verify_level 0: signature only",
        ),
    )
    text = render_text(report)
    assert "TOTAL_PASSED" in text
    not_performed = text.split("Checks NOT performed", 1)[1]
    assert "certificate_chain: verify_level 0: signature only" in not_performed
    assert "sm2.verifies_without_z" in text and "revocation.soft_fail" in text


def test_seal_checks_fit_the_report():
    """seals/verify.py results carry over name by name (not_checked = not_performed)."""
    from seals.verify import Check as SealCheck
    from seals.verify import CheckName as SealCheckName
    from seals.verify import CheckStatus as SealStatus
    from seals.verify import SubIndication as SealSub

    result = VerificationResult(
        version=None,
        checks=(
            SealCheck(SealCheckName.SEAL_MAKER_SIGNATURE, SealStatus.PASSED, None, "ok"),
            SealCheck(
                SealCheckName.SEAL_VALIDITY, SealStatus.FAILED, SealSub.SEAL_EXPIRED, "expired"
            ),
            SealCheck(SealCheckName.SEAL_STATUS, SealStatus.NOT_CHECKED, None, "no registry"),
        ),
    )
    status = {
        SealStatus.PASSED: CheckStatus.PASSED,
        SealStatus.FAILED: CheckStatus.FAILED,
        SealStatus.NOT_CHECKED: CheckStatus.NOT_PERFORMED,
    }
    checks = [
        Check(
            name=c.name,
            status=status[c.status],
            sub_indication=SubIndication(c.sub_indication) if c.sub_indication else None,
            message=c.message,
        )
        for c in result.checks
    ]
    report = ValidationReport.build(
        validated_object=ValidatedObject.SEAL,
        checks=checks,
        validation_time=NOW,
        time_source=TimeSource.REQUESTED,
    )
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SEAL_EXPIRED,
    )
    assert {s.value for s in SealSub} <= {s.value for s in SubIndication}
