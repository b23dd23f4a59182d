"""The verification report of a sealed document: one entry per signature, each a list of
checks in the validation layer's vocabulary (``trust.validation.report``), plus a
document summary. The indications are computed from the checks, never set by hand."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trust.validation.report import (
    CertificateInfo,
    Check,
    CheckStatus,
    Finding,
    Indication,
    SubIndication,
    combine,
)


class DocumentFormat(StrEnum):
    OFD = "ofd"
    PDF = "pdf"


class ReferenceStatus(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    MISSING = "missing"  # the referenced file is not in the package


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReferenceResult(_Model):
    file: str = Field(description="package path, with a leading slash")
    status: ReferenceStatus


class SealSummary(_Model):
    es_id: str
    name: str
    version: int


class SignatureReport(_Model):
    id: str = Field(description="the ID in its document's signature list")
    document: int = Field(0, description="0-based index of its document (OFD DocBody)")
    type: str = Field(description="Seal (electronic seal) or Sign (plain signature)")
    location: str = Field(description="the signature's description file, e.g. Signature.xml")
    indication: Indication
    sub_indication: SubIndication | None
    signing_time: str | None = Field(None, description="as the document states it")
    signer: CertificateInfo | None = None
    seal: SealSummary | None = None
    whole_protected: bool = Field(
        False, description="the signature covers the signature list: no further signature"
    )
    references: tuple[ReferenceResult, ...] = ()
    checks: tuple[Check, ...]
    warnings: tuple[Finding, ...] = ()

    @classmethod
    def build(cls, *, checks: Iterable[Check], **fields: object) -> SignatureReport:
        checks = tuple(checks)
        verdict = combine(checks)
        return cls.model_validate(
            {
                "indication": verdict.indication,
                "sub_indication": verdict.sub_indication,
                "checks": checks,
                **fields,
            }
        )

    @model_validator(mode="after")
    def _indication_follows_checks(self) -> Self:
        verdict = combine(self.checks)
        if (self.indication, self.sub_indication) != (verdict.indication, verdict.sub_indication):
            raise ValueError("indication and sub-indication must follow from the checks")
        return self

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


class DocumentSummary(_Model):
    """One document of a package (OFD DocBody): the worst of its signatures' verdicts."""

    index: int = Field(description="0-based, in OFD.xml order")
    location: str = Field(description="its root file, e.g. /Doc_0/Document.xml")
    indication: Indication
    sub_indication: SubIndication | None
    signatures: int = Field(description="how many signatures this document's list holds")


class DocumentReport(_Model):
    format: DocumentFormat
    indication: Indication = Field(description="the worst of the signatures' indications")
    sub_indication: SubIndication | None
    signatures: tuple[SignatureReport, ...]
    documents: tuple[DocumentSummary, ...] = Field(
        (), description="per document of an OFD package (DocBody); empty for a PDF"
    )
    unprotected_files: tuple[str, ...] = Field(
        (), description="package files no signature covers (their changes go unnoticed)"
    )
    warnings: tuple[Finding, ...] = ()

    @classmethod
    def build(
        cls, *, format: DocumentFormat, signatures: Iterable[SignatureReport], **fields: object
    ) -> DocumentReport:
        signatures = tuple(signatures)
        verdict = _summary(signatures)
        return cls.model_validate(
            {
                "format": format,
                "indication": verdict[0],
                "sub_indication": verdict[1],
                "signatures": signatures,
                **fields,
            }
        )


def document_summary(
    index: int, location: str, signatures: tuple[SignatureReport, ...]
) -> DocumentSummary:
    indication, sub_indication = _summary(signatures)
    return DocumentSummary(
        index=index,
        location=location,
        indication=indication,
        sub_indication=sub_indication,
        signatures=len(signatures),
    )


def _summary(signatures: tuple[SignatureReport, ...]) -> tuple[Indication, SubIndication | None]:
    """The worst signature verdict; no signature at all is SIGNED_DATA_NOT_FOUND."""
    if not signatures:
        return Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND
    # Each signature's verdict as one check: the document is as good as its worst one.
    stand_ins = [
        Check(
            name=s.id,
            status={
                Indication.TOTAL_PASSED: CheckStatus.PASSED,
                Indication.TOTAL_FAILED: CheckStatus.FAILED,
                Indication.INDETERMINATE: CheckStatus.INDETERMINATE,
            }[s.indication],
            sub_indication=s.sub_indication,
            message=s.location,
        )
        for s in signatures
    ]
    verdict = combine(stand_ins)
    return verdict.indication, verdict.sub_indication
