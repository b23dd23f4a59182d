"""Signed validation reports: a report as CMS SignedData over its canonical JSON.

The content is the report's JSON (``model_dump(mode="json")``) in the audit log's
canonical form (``trust.audit.encoding.canonical_json``: keys sorted, no whitespace,
UTF-8, no floats), encapsulated (id-data) so the CMS alone carries what it vouches for;
it is signed by the service's report-signing key through a ``CmsSigner`` (a key-store
key, never a key here) with the signer's chain included, so a third party can check the
report with any CMS verifier and the service's root.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509

from trust.audit.encoding import canonical_json
from trust.cms import CmsSigner, build_signed_data, verify_signed_data
from trust.errors import MalformedASN1
from trust.validation.report import ValidationReport


def report_json(report: ValidationReport) -> bytes:
    """The canonical JSON bytes a signed report covers."""
    return canonical_json(report.model_dump(mode="json"))


def sign_report(
    report: ValidationReport,
    signer: CmsSigner,
    *,
    chain: Sequence[x509.Certificate] = (),
    signing_time: datetime | None = None,
) -> bytes:
    """DER ContentInfo: SignedData over ``report_json(report)``, chain included."""
    return build_signed_data(
        report_json(report), signer, extra_certificates=chain, signing_time=signing_time
    )


def open_signed_report(cms_der: bytes) -> ValidationReport:
    """The report a signed report carries. Only the content is read: whether the
    signature and its signer are good is ``verify_cms``'s question."""
    content = verify_signed_data(cms_der).content
    if content is None:
        raise MalformedASN1("a signed report encapsulates its JSON")
    try:
        return ValidationReport.model_validate_json(content)
    except ValueError:
        raise MalformedASN1("the signed content is not a validation report") from None
