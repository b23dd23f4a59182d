"""Verifying every signature and document timestamp in a PDF, one report each.

PKCS#7 / PAdES signatures (ECDSA, RSA, and SM2 in PKCS#7 content types through the
``SM2SignatureValidator`` plug-in) go through pyHanko's ``validate_pdf_signature``;
GM/T 0010 signatures (our SM2 seals) through ``trust.validation.verify_cms`` over the
signed byte ranges. Both get pyHanko's coverage and difference analysis
(``pdf_integrity``). The seal's name (/Name) and esID (field name) are read back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from functools import partial

from asn1crypto import cms, crl, ocsp, x509
from pydantic import AwareDatetime, BaseModel, ConfigDict
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESSubIndic
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
    extract_contents,
)
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    ModificationInfo,
    PdfSignatureStatus,
    SignatureStatus,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from seals.documents.pdf_appearance import seal_id_from_field
from seals.documents.pdf_integrity import GmEmbeddedSignature, Integrity, integrity
from seals.documents.pdf_io import DEFAULT_MAX_PDF_BYTES, open_reader, parsing
from timestamp.checker import TokenChecker
from trust import oids
from trust.clock import Clock, SystemClock
from trust.cms.algorithms import PKCS7_SIGNED_DATA
from trust.errors import PdfUnsupported
from trust.validation import verify_cms
from trust.validation.certs import certificate_info
from trust.validation.report import (
    CertificateInfo,
    Check,
    CheckName,
    CheckStatus,
    SubIndication,
    TimeSource,
    TimestampInfo,
    ValidatedObject,
    ValidationReport,
    combine,
)
from trust.validation.sm2_validator import SM2SignatureValidator

# A document with more signature fields than this is refused, not verified for minutes.
MAX_SIGNATURES = 64
DIGEST = "message_digest"
TIMESTAMP = "timestamp"


class PdfSignatureKind(StrEnum):
    SIGNATURE = "signature"
    DOCUMENT_TIMESTAMP = "document_timestamp"


class PdfSignatureReport(BaseModel):
    """One signature field: where it is, what it claims, what it covers, and the
    validation report (ETSI indications over typed checks, ``trust.validation``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field_name: str
    kind: PdfSignatureKind
    sub_filter: str | None
    revision: int | None = None  # 0-based revision the signature belongs to
    es_id: str | None = None  # from a field named by our stamping (Seal_<esID>)
    seal_name: str | None = None  # the signature dictionary's /Name
    reason: str | None = None
    location: str | None = None
    claimed_signing_time: AwareDatetime | None = None
    coverage: str | None = None
    modification_level: str | None = None
    docmdp_ok: bool | None = None
    report: ValidationReport


def verify_pdf(
    pdf: bytes,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[crl.CertificateList] = (),
    ocsps: Sequence[ocsp.OCSPResponse] = (),
    at: datetime | None = None,
    clock: Clock | None = None,
    max_bytes: int = DEFAULT_MAX_PDF_BYTES,
) -> tuple[PdfSignatureReport, ...]:
    """A report per signed signature field, in field order; none for an unsigned PDF.

    Raises ``PdfMalformed`` (400) when the file is not a readable PDF; a signature whose
    contents are broken gets a ``FORMAT_FAILURE`` report instead. Synchronous (pyHanko's
    validation runs its own event loop): call it from a worker thread."""
    reader = open_reader(pdf, max_bytes)
    fields = parsing(lambda: list(enumerate_sig_fields(reader, filled_status=True)), "fields")
    if len(fields) > MAX_SIGNATURES:
        raise PdfUnsupported(
            f"{len(fields)} signature fields; at most {MAX_SIGNATURES} are verified"
        )
    verifier = _Verifier(anchors, intermediates, crls, ocsps, at, clock or SystemClock())
    return tuple(
        parsing(partial(verifier.verify, reader, name, field), "cannot read a signature")
        for name, _, field in fields
    )


class _Verifier:
    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate],
        crls: Sequence[crl.CertificateList],
        ocsps: Sequence[ocsp.OCSPResponse],
        at: datetime | None,
        clock: Clock,
    ) -> None:
        self._anchors = list(anchors)
        self._intermediates = list(intermediates)
        self._crls = list(crls)
        self._ocsps = list(ocsps)
        self._at = at
        self._clock = clock

    def _context(self, embedded: EmbeddedPdfSignature) -> ValidationContext:
        # A fresh context per signature: certvalidator caches paths and revocation in it.
        # The CMS's own certificates are named explicitly: pyHanko does not always offer
        # them to path building (seen with SM2 chains without key identifiers).
        return ValidationContext(
            trust_roots=self._anchors,
            other_certs=[*self._intermediates, *embedded.other_embedded_certs],
            crls=self._crls,
            ocsps=self._ocsps,
            moment=self._at,
            allow_fetching=False,
            revocation_mode="soft-fail",
            signature_validator=SM2SignatureValidator(),
        )

    def verify(
        self, reader: PdfFileReader, name: str, sig_field: generic.PdfObject
    ) -> PdfSignatureReport:
        field_dict = sig_field.get_object()
        sig = field_dict["/V"]
        kind = (
            PdfSignatureKind.DOCUMENT_TIMESTAMP
            if sig.get("/Type") == "/DocTimeStamp"
            else PdfSignatureKind.SIGNATURE
        )
        header: dict[str, object] = {
            "field_name": name,
            "kind": kind,
            "sub_filter": _text(sig.get("/SubFilter")),
            "es_id": seal_id_from_field(name),
            "seal_name": _text(sig.get("/Name")),
            "reason": _text(sig.get("/Reason")),
            "location": _text(sig.get("/Location")),
            "claimed_signing_time": _pdf_date(sig.get("/M")),
        }
        try:
            content_type = cms.ContentInfo.load(extract_contents(sig))["content_type"].dotted
        except (ValueError, TypeError, KeyError) as exc:
            return self._broken(header, f"the signature /Contents is not CMS: {exc}")
        if content_type == oids.GM_CMS_SIGNED_DATA:
            return self._gm(reader, field_dict, name, header)
        if content_type != PKCS7_SIGNED_DATA:
            return self._broken(header, f"the signature holds a {content_type} ContentInfo")
        try:
            embedded = EmbeddedPdfSignature(reader, field_dict, name)
            if kind is PdfSignatureKind.DOCUMENT_TIMESTAMP:
                status: PdfSignatureStatus | DocumentTimestampStatus = asyncio.run(
                    async_validate_pdf_timestamp(
                        embedded, validation_context=self._context(embedded)
                    )
                )
            else:
                status = asyncio.run(
                    async_validate_pdf_signature(
                        embedded, signer_validation_context=self._context(embedded)
                    )
                )
        except (SignatureValidationError, ValueError, KeyError, TypeError) as exc:
            return self._broken(header, f"pyHanko cannot validate the signature: {exc}")
        return self._from_pyhanko(header, embedded, status, kind)

    # --- GM/T 0010 (SM2) ------------------------------------------------------------

    def _gm(
        self,
        reader: PdfFileReader,
        field_dict: generic.DictionaryObject,
        name: str,
        header: dict[str, object],
    ) -> PdfSignatureReport:
        embedded = GmEmbeddedSignature(reader, field_dict, name, "sm3")
        embedded.compute_integrity_info()
        found = integrity(ModificationInfo(**embedded.summarise_integrity_info()))
        base = verify_cms(
            embedded.cms_der(),
            embedded.signed_bytes(),
            anchors=self._anchors,
            intermediates=self._intermediates,
            crls=self._crls,
            ocsps=self._ocsps,
            at=self._at,
            clock=self._clock,
            timestamp_checker=TokenChecker(),
        )
        fields = base.model_dump(
            exclude={"indication", "sub_indication", "checks", "schema_version"}
        )
        report = ValidationReport.build(**{**fields, "checks": (*base.checks, *found.checks)})
        return _report(header, embedded, found, report)

    # --- pyHanko --------------------------------------------------------------------

    def _from_pyhanko(
        self,
        header: dict[str, object],
        embedded: EmbeddedPdfSignature,
        status: PdfSignatureStatus | DocumentTimestampStatus,
        kind: PdfSignatureKind,
    ) -> PdfSignatureReport:
        found = integrity(status)
        checks = [
            Check(
                name=CheckName.FORMAT,
                status=CheckStatus.PASSED,
                message=f"CMS SignedData, {status.md_algorithm} digest",
            ),
            _passed_or(status.intact, DIGEST, "the byte-range digest", SubIndication.HASH_FAILURE),
            _passed_or(
                status.valid, CheckName.SIGNATURE, "the signature", SubIndication.SIG_CRYPTO_FAILURE
            ),
            _trust_check(status),
            *found.checks,
        ]
        timestamps: tuple[TimestampInfo, ...] = ()
        proven: datetime | None = None
        if isinstance(status, TimestampSignatureStatus):
            proven = status.timestamp
        else:
            tst = status.timestamp_validity
            if tst is None:
                checks.append(
                    Check(
                        name=TIMESTAMP,
                        status=CheckStatus.NOT_PERFORMED,
                        message="no signature timestamp",
                    )
                )
            else:
                checks.append(_timestamp_check(tst))
                timestamps = (_timestamp_info(tst, embedded),)
                if tst.valid and tst.trusted:
                    proven = tst.timestamp
        validation_time = status.validation_time or self._at or self._clock.now()
        report = ValidationReport.build(
            validated_object=(
                ValidatedObject.TIMESTAMP
                if kind is PdfSignatureKind.DOCUMENT_TIMESTAMP
                else ValidatedObject.CMS_SIGNATURE
            ),
            checks=checks,
            validation_time=validation_time,
            time_source=TimeSource.REQUESTED if self._at is not None else TimeSource.CURRENT,
            signer=certificate_info(status.signing_cert),
            claimed_signing_time=header["claimed_signing_time"],
            proven_signing_time=proven,
            chain=_chain(status),
            timestamps=timestamps,
        )
        return _report(header, embedded, found, report)

    def _broken(self, header: dict[str, object], message: str) -> PdfSignatureReport:
        report = ValidationReport.build(
            validated_object=ValidatedObject.CMS_SIGNATURE,
            checks=[
                Check(
                    name=CheckName.FORMAT,
                    status=CheckStatus.FAILED,
                    sub_indication=SubIndication.FORMAT_FAILURE,
                    message=message[:300],
                )
            ],
            validation_time=self._at or self._clock.now(),
            time_source=TimeSource.REQUESTED if self._at is not None else TimeSource.CURRENT,
        )
        return PdfSignatureReport.model_validate({**header, "report": report})


def _report(
    header: dict[str, object],
    embedded: EmbeddedPdfSignature,
    found: Integrity,
    report: ValidationReport,
) -> PdfSignatureReport:
    return PdfSignatureReport.model_validate(
        {
            **header,
            "revision": embedded.signed_revision,
            "coverage": found.coverage,
            "modification_level": found.modification_level,
            "docmdp_ok": found.docmdp_ok,
            "report": report,
        }
    )


def _passed_or(ok: bool, name: str, what: str, sub: SubIndication) -> Check:
    if ok:
        return Check(name=name, status=CheckStatus.PASSED, message=f"{what} verifies")
    return Check(name=name, status=CheckStatus.FAILED, sub_indication=sub, message=f"{what} fails")


def _trust_check(status: SignatureStatus) -> Check:
    if status.trusted:
        return Check(
            name=CheckName.CERTIFICATE_CHAIN,
            status=CheckStatus.PASSED,
            message="the signer's certificate chains to a trust anchor",
        )
    # pyHanko names its AdES sub-indications as ETSI EN 319 102-1 does, like ours.
    indic: AdESSubIndic | None = status.trust_problem_indic
    name = indic.name if isinstance(indic, AdESFailure | AdESIndeterminate) else "NO_PATH"
    return Check(
        name=CheckName.CERTIFICATE_CHAIN,
        status=CheckStatus.FAILED if isinstance(indic, AdESFailure) else CheckStatus.INDETERMINATE,
        sub_indication=SubIndication.__members__.get(
            name, SubIndication.NO_CERTIFICATE_CHAIN_FOUND
        ),
        message=f"the signer's certificate is not trusted ({name.lower()})",
    )


def _timestamp_check(tst: TimestampSignatureStatus) -> Check:
    if tst.valid and tst.intact and tst.trusted:
        return Check(
            name=TIMESTAMP,
            status=CheckStatus.PASSED,
            message=f"signature timestamp at {tst.timestamp.isoformat()}",
        )
    if not (tst.valid and tst.intact):
        return Check(
            name=TIMESTAMP,
            status=CheckStatus.FAILED,
            sub_indication=SubIndication.SIG_CRYPTO_FAILURE,
            message="the signature timestamp does not verify",
        )
    return Check(
        name=TIMESTAMP,
        status=CheckStatus.INDETERMINATE,
        sub_indication=SubIndication.NO_POE,
        message="the timestamp authority's certificate is not trusted",
    )


def _timestamp_info(tst: TimestampSignatureStatus, embedded: EmbeddedPdfSignature) -> TimestampInfo:
    combined = combine([_timestamp_check(tst)])
    return TimestampInfo(
        gen_time=tst.timestamp,
        tsa=certificate_info(tst.signing_cert),
        serial=_token_serial(embedded),
        message_imprint_algorithm=tst.md_algorithm,
        indication=combined.indication,
        sub_indication=combined.sub_indication,
    )


def _chain(status: SignatureStatus) -> tuple[CertificateInfo, ...]:
    """The signer's certificate first, the trust anchor last."""
    path = status.validation_path
    if path is None:
        return ()
    certs = list(path.iter_certs(include_root=True))  # root first
    return tuple(
        certificate_info(c, trust_anchor=i == 0) for i, c in reversed(list(enumerate(certs)))
    )


def _token_serial(embedded: EmbeddedPdfSignature) -> str:
    """The serial number (hex) of the signature's first timestamp token."""
    for attribute in embedded.signer_info["unsigned_attrs"] or ():
        if attribute["type"].native == "signature_time_stamp_token":
            token = attribute["values"][0]
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            return format(tst_info["serial_number"].native, "x")
    return ""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value)


def _pdf_date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return generic.parse_pdf_date(str(value))
    except (ValueError, TypeError):
        return None
