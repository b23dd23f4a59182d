"""PDF verification results in the sealed-document report (``seals.documents.report``) that
OFD verification also produces, so the documents API answers alike for both formats.

A PDF signature carries no SES structure: its seal is known only by the esID and name the
stamp recorded, so the seal summary comes from ``resolve_seal`` (the seal registry) when
the caller gives one; an esID the registry does not know is a warning, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from seals.documents.pdf_verify import PdfSignatureKind, PdfSignatureReport
from seals.documents.report import DocumentFormat, DocumentReport, SealSummary, SignatureReport
from trust.validation.report import Finding

SealResolver = Callable[[str], SealSummary | None]


def pdf_document_report(
    reports: Sequence[PdfSignatureReport], *, resolve_seal: SealResolver | None = None
) -> DocumentReport:
    """One ``SignatureReport`` per PDF signature; the document is as good as its worst."""
    return DocumentReport.build(
        format=DocumentFormat.PDF,
        signatures=[_signature(r, resolve_seal) for r in reports],
    )


def _signature(report: PdfSignatureReport, resolve_seal: SealResolver | None) -> SignatureReport:
    warnings = list(report.report.warnings)
    seal: SealSummary | None = None
    if report.es_id is not None and resolve_seal is not None:
        seal = resolve_seal(report.es_id)
        if seal is None:
            warnings.append(
                Finding(
                    code="seal_not_in_registry",
                    message=f"the stamp names seal {report.es_id}, unknown to the registry",
                    details={"es_id": report.es_id},
                )
            )
        elif report.seal_name is not None and seal.name != report.seal_name:
            warnings.append(
                Finding(
                    code="seal_name_differs",
                    message="the name in the signature is not the registered seal's name",
                    details={"signature": report.seal_name, "registry": seal.name},
                )
            )
    if report.modification_level not in (None, "none"):
        warnings.append(
            Finding(
                code="pdf_changed_after_signing",
                message=f"incremental updates after this signature: {report.modification_level}",
                details={"coverage": report.coverage or "", "docmdp_ok": str(report.docmdp_ok)},
            )
        )
    return SignatureReport.build(
        id=report.field_name,
        type=_type(report),
        location=report.field_name,
        signing_time=(
            report.claimed_signing_time.isoformat() if report.claimed_signing_time else None
        ),
        signer=report.report.signer,
        seal=seal,
        checks=report.report.checks,
        warnings=tuple(warnings),
    )


def _type(report: PdfSignatureReport) -> str:
    if report.kind is PdfSignatureKind.DOCUMENT_TIMESTAMP:
        return "DocTimeStamp"
    return "Seal" if report.es_id is not None else "Sign"
