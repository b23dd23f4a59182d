"""What a PDF signature covers and what changed after it, as report checks.

pyHanko does the work: the byte-range coverage (entire file, entire revision, ...) and the
difference analysis of later incremental updates (``ModificationLevel``, ``docmdp_ok``).
For GM/T 0010 signatures, which pyHanko's ``EmbeddedPdfSignature`` cannot parse,
``GmEmbeddedSignature`` gives it the fields those two steps read.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import parser
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffPolicy, ModificationLevel
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, extract_contents
from pyhanko.sign.validation.status import ModificationInfo, SignatureCoverageLevel

from trust.validation.report import Check, CheckStatus, SubIndication

COVERAGE = "coverage"
MODIFICATIONS = "modifications"


class GmEmbeddedSignature(EmbeddedPdfSignature):
    """The coverage and difference-analysis parts of ``EmbeddedPdfSignature`` for a
    signature whose /Contents pyHanko cannot load (GM/T 0010 content types). Its CMS is
    checked by ``trust.validation.verify_cms``, not here."""

    def __init__(
        self,
        reader: PdfFileReader,
        sig_field: generic.DictionaryObject,
        fq_name: str,
        digest_algorithm: str,
    ) -> None:
        # Deliberately not calling super().__init__: it parses /Contents as PKCS#7.
        self.reader = reader
        self.sig_field = sig_field
        sig_object_ref = sig_field.raw_get("/V")
        self.sig_object = sig_object_ref.get_object()
        self.byte_range = self.sig_object.raw_get("/ByteRange")
        self.pkcs7_content = extract_contents(self.sig_object)
        self.md_algorithm = self.external_md_algorithm = digest_algorithm
        self.signed_revision = reader.xrefs.get_last_change(sig_object_ref.reference)
        self.coverage = None
        self.external_digests = {}
        self._docmdp = self._fieldmdp = None
        self._docmdp_queried = self._fieldmdp_queried = False
        self.tst_signature_digest = None
        self.diff_result = None
        self._integrity_checked = False
        self.fq_name = fq_name

    def compute_integrity_info(
        self, diff_policy: DiffPolicy | None = None, skip_diff: bool = False
    ) -> None:
        """Coverage and difference analysis as pyHanko does them, without its byte-range
        digest: ``verify_cms`` hashes the signed bytes itself (SM3 costs ~40 ms per MB)."""
        # pyHanko leaves these attributes unannotated, so mypy takes them for None.
        self._enforce_hybrid_xref_policy()
        self.coverage = self.evaluate_signature_coverage()  # type: ignore[assignment]
        if not skip_diff:
            policy = diff_policy or DEFAULT_DIFF_POLICY
            self.diff_result = self.evaluate_modifications(policy)  # type: ignore[assignment]
        self._integrity_checked = True

    def cms_der(self) -> bytes:
        """The SignedData DER without the zero padding that fills the rest of /Contents."""
        _, _, _, header, body, _ = parser.parse(self.pkcs7_content)
        return bytes(header + body)

    def signed_bytes(self) -> bytes:
        """The bytes the /ByteRange covers (the file without the /Contents hole)."""
        stream = self.reader.stream
        parts = []
        offsets = [int(v) for v in self.byte_range]
        for start, length in zip(offsets[::2], offsets[1::2], strict=True):
            stream.seek(start)
            parts.append(stream.read(length))
        return b"".join(parts)


@dataclass(frozen=True)
class Integrity:
    coverage: str  # entire_file, entire_revision, contiguous_block_from_start, unclear
    modification_level: str | None  # none, lta_updates, form_filling, annotations, other
    docmdp_ok: bool | None
    checks: tuple[Check, Check]


def integrity(info: ModificationInfo) -> Integrity:
    coverage = info.coverage or SignatureCoverageLevel.UNCLEAR
    level = info.modification_level
    return Integrity(
        coverage=coverage.name.lower(),
        modification_level=level.name.lower() if level is not None else None,
        docmdp_ok=info.docmdp_ok,
        checks=(_coverage_check(coverage), _modification_check(info, level)),
    )


def _coverage_check(coverage: SignatureCoverageLevel) -> Check:
    if coverage is SignatureCoverageLevel.ENTIRE_FILE:
        return Check(name=COVERAGE, status=CheckStatus.PASSED, message="covers the entire file")
    if coverage is SignatureCoverageLevel.ENTIRE_REVISION:
        return Check(
            name=COVERAGE,
            status=CheckStatus.PASSED,
            message="covers its revision; later incremental updates were analysed",
        )
    return Check(
        name=COVERAGE,
        status=CheckStatus.FAILED,
        sub_indication=SubIndication.FORMAT_FAILURE,
        message=f"the byte range does not cover a whole revision ({coverage.name.lower()})",
    )


def _modification_check(info: ModificationInfo, level: ModificationLevel | None) -> Check:
    if level is ModificationLevel.NONE:
        return Check(
            name=MODIFICATIONS, status=CheckStatus.PASSED, message="no change after signing"
        )
    if info.docmdp_ok:
        assert level is not None
        return Check(
            name=MODIFICATIONS,
            status=CheckStatus.PASSED,
            message=f"only permitted changes after signing ({level.name.lower()})",
        )
    if info.docmdp_ok is None:
        return Check(
            name=MODIFICATIONS,
            status=CheckStatus.INDETERMINATE,
            sub_indication=SubIndication.GENERIC,
            message="the changes after signing could not be analysed",
        )
    what = level.name.lower() if level is not None else "unknown"
    return Check(
        name=MODIFICATIONS,
        status=CheckStatus.FAILED,
        sub_indication=SubIndication.HASH_FAILURE,
        message=f"the document was modified after signing beyond what is permitted ({what})",
    )
