"""PDF verification: changes after signing (pyHanko's difference analysis), tampering, unknown
roots, broken signatures, and malformed files as 4xx errors within a time bound."""

from __future__ import annotations

import io
import random
import time
import zlib
from functools import cache
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from seals.documents.pdf_appearance import Placement
from seals.documents.pdf_io import DEFAULT_MAX_PDF_BYTES
from seals.documents.pdf_report import pdf_document_report
from seals.documents.pdf_stamp import StampOptions, stamp_pdf
from seals.documents.pdf_verify import PdfSignatureReport, verify_pdf
from seals.documents.report import DocumentFormat, SealSummary
from tests.pdf_support import (
    SealSigner,
    make_pdf,
    make_seal,
    pyhanko_sign,
    pyhanko_validate,
    seal_signer,
)
from trust.errors import DocumentTooLarge, PdfMalformed, TrustError
from trust.keys import KeyAlgorithm
from trust.validation.report import CheckStatus, Indication, SubIndication

ALGORITHMS = [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.RSA_2048, KeyAlgorithm.SM2]
PLACE = Placement(1, 30, 30)
# Malformed input must be refused quickly (~0.1 s here); generous for a loaded 2-core machine.
BOUND_SECONDS = 5.0


@pytest.fixture(scope="module", params=ALGORITHMS, ids=str)
def stamped(request: pytest.FixtureRequest) -> tuple[SealSigner, bytes]:
    s = seal_signer(request.param)
    result = stamp_pdf(make_pdf(2), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain))
    return s, result.pdf


def _only(reports: tuple[PdfSignatureReport, ...]) -> PdfSignatureReport:
    (report,) = reports
    return report


def _add_page_content(pdf: bytes, text: bytes = b"PAID IN FULL") -> bytes:
    """An incremental update drawing text on page 1, written by pyHanko."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    ops = b"BT /F1 36 Tf 100 300 Td (" + text + b") Tj ET"
    stream = writer.add_object(generic.StreamObject(stream_data=ops))
    writer.add_stream_to_page(0, stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_intact_signature_passes(stamped: tuple[SealSigner, bytes]) -> None:
    s, pdf = stamped
    report = _only(verify_pdf(pdf, anchors=[s.root]))
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks
    assert (report.coverage, report.modification_level, report.docmdp_ok) == (
        "entire_file",
        "none",
        True,
    )
    assert report.report.signer is not None and report.report.chain[-1].trust_anchor


def test_page_content_added_after_signing_is_reported(
    stamped: tuple[SealSigner, bytes], tmp_path: Path
) -> None:
    s, pdf = stamped
    changed = _add_page_content(pdf)
    report = _only(verify_pdf(changed, anchors=[s.root]))
    assert report.coverage == "entire_revision"
    assert report.modification_level == "other" and report.docmdp_ok is False
    modifications = report.report.check("modifications")
    assert modifications.status is CheckStatus.FAILED
    assert report.report.indication is Indication.TOTAL_FAILED
    # The signature itself still verifies over its revision.
    assert report.report.check("signature").status is CheckStatus.PASSED
    if s.signer.algorithm is not KeyAlgorithm.SM2:
        rc, out = pyhanko_validate(changed, s.root, tmp=tmp_path)
        assert rc != 0 and "UNTOUCHED" not in out, out


def test_byte_changed_inside_the_signed_range_fails_the_digest(
    stamped: tuple[SealSigner, bytes],
) -> None:
    s, pdf = stamped
    at = pdf.index(b"official notice")
    tampered = pdf[:at] + b"OFFICIAL" + pdf[at + 8 :]
    report = _only(verify_pdf(tampered, anchors=[s.root]))
    assert report.report.indication is Indication.TOTAL_FAILED
    assert report.report.check("message_digest").status is CheckStatus.FAILED
    assert report.report.sub_indication is SubIndication.HASH_FAILURE


def test_unknown_root_is_indeterminate(stamped: tuple[SealSigner, bytes]) -> None:
    s, pdf = stamped
    stranger = seal_signer(s.signer.algorithm, label="Stranger")
    report = _only(verify_pdf(pdf, anchors=[stranger.root]))
    assert report.report.indication is Indication.INDETERMINATE
    assert report.report.check("certificate_chain").status is CheckStatus.INDETERMINATE
    assert report.report.check("signature").status is CheckStatus.PASSED


def test_unsigned_pdf_has_no_reports() -> None:
    assert verify_pdf(make_pdf(3), anchors=[]) == ()


def test_garbage_signature_contents_is_a_format_failure(
    stamped: tuple[SealSigner, bytes],
) -> None:
    s, pdf = stamped
    start = pdf.index(b"/Contents <") + len(b"/Contents <")
    broken = pdf[:start] + b"DEADBEEF" * 8 + pdf[start + 64 :]
    report = _only(verify_pdf(broken, anchors=[s.root]))
    assert report.report.indication is Indication.TOTAL_FAILED
    assert report.report.sub_indication in (
        SubIndication.FORMAT_FAILURE,
        SubIndication.HASH_FAILURE,
    )


def _refused(data: bytes, **kwargs: object) -> TrustError:
    started = time.monotonic()
    with pytest.raises(TrustError) as raised:
        verify_pdf(data, anchors=[], **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < BOUND_SECONDS
    assert 400 <= raised.value.status < 500, raised.value
    return raised.value


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage, not a PDF at all",
        b"%PDF-1.7\n",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        b"%PDF-1.7\n" + bytes(range(256)) * 100,
        b"%PDF-1.7\nstartxref\n999999999\n%%EOF\n",
        b"%PDF-1.7\nxref\n0 99999999\ntrailer\n<< /Size 99999999 >>\nstartxref\n9\n%%EOF",
    ],
    ids=["empty", "garbage", "header", "no-xref", "binary", "bad-startxref", "huge-xref"],
)
def test_malformed_pdf_is_a_clear_4xx(data: bytes) -> None:
    assert isinstance(_refused(data), PdfMalformed)


def test_truncated_signed_pdf_is_refused(stamped: tuple[SealSigner, bytes]) -> None:
    _, pdf = stamped
    for cut in (len(pdf) // 3, len(pdf) - 40):
        assert isinstance(_refused(pdf[:cut]), PdfMalformed)


def test_oversized_pdf_is_refused_before_parsing() -> None:
    pdf = make_pdf(1)
    assert isinstance(_refused(pdf, max_bytes=len(pdf) - 1), DocumentTooLarge)
    assert DEFAULT_MAX_PDF_BYTES == 50 * 1024 * 1024


def test_stamping_malformed_pdf_is_refused() -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    for data in (b"garbage", make_pdf(1)[:300]):
        with pytest.raises(PdfMalformed):
            stamp_pdf(data, s.signer, make_seal(), PLACE)


def test_random_damage_never_escapes_as_an_unhandled_exception(
    stamped: tuple[SealSigner, bytes],
) -> None:
    """Bytes overwritten anywhere in a signed file: a report or a 4xx, nothing else."""
    s, pdf = stamped
    rng = random.Random(20261122)
    for _ in range(60):
        data = bytearray(pdf)
        at = rng.randrange(len(data))
        data[at : at + rng.randint(1, 16)] = rng.randbytes(rng.randint(1, 16))
        started = time.monotonic()
        try:
            reports = verify_pdf(bytes(data), anchors=[s.root])
        except TrustError as exc:
            assert 400 <= exc.status < 500, exc
        else:
            assert all(isinstance(r, PdfSignatureReport) for r in reports)
        assert time.monotonic() - started < BOUND_SECONDS


def test_document_report_for_the_documents_api(stamped: tuple[SealSigner, bytes]) -> None:
    s, pdf = stamped
    changed = _add_page_content(pdf)
    registry = {"11010000000001": SealSummary(es_id="11010000000001", name="公章", version=4)}
    document = pdf_document_report(verify_pdf(changed, anchors=[s.root]), resolve_seal=registry.get)
    assert document.format is DocumentFormat.PDF
    (signature,) = document.signatures
    assert signature.type == "Seal" and signature.seal == registry["11010000000001"]
    codes = {w.code for w in signature.warnings}
    assert {"seal_name_differs", "pdf_changed_after_signing"} <= codes
    assert document.indication is Indication.TOTAL_FAILED
    assert signature.check("modifications").status is CheckStatus.FAILED

    unknown = pdf_document_report(verify_pdf(pdf, anchors=[s.root]), resolve_seal=lambda _: None)
    assert unknown.indication is Indication.TOTAL_PASSED
    assert [w.code for w in unknown.signatures[0].warnings] == ["seal_not_in_registry"]
    assert pdf_document_report(()).sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND


@cache
def _deflated_zeros() -> bytes:
    return zlib.compress(bytes(100_000_000), 1)


def test_compressed_bomb_added_after_signing_is_reported_quickly(
    stamped: tuple[SealSigner, bytes],
) -> None:
    """A 100 MB content stream deflated to ~100 KB: verification need not inflate it."""
    s, pdf = stamped
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    bomb = generic.StreamObject(
        {generic.NameObject("/Filter"): generic.NameObject("/FlateDecode")},
        encoded_data=_deflated_zeros(),
    )
    writer.add_stream_to_page(0, writer.add_object(bomb))
    out = io.BytesIO()
    writer.write(out)
    started = time.monotonic()
    report = _only(verify_pdf(out.getvalue(), anchors=[s.root]))
    assert time.monotonic() - started < BOUND_SECONDS
    assert report.modification_level == "other"
    assert report.report.indication is Indication.TOTAL_FAILED


def test_signature_made_by_the_pyhanko_cli_verifies_and_survives_our_seal(
    tmp_path: Path,
) -> None:
    theirs, their_root = pyhanko_sign(make_pdf(2), tmp=tmp_path)
    report = _only(verify_pdf(theirs, anchors=[their_root]))
    assert report.field_name == "Theirs" and report.es_id is None
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks

    ours = seal_signer(KeyAlgorithm.SM2)
    options = StampOptions(chain=ours.chain)
    sealed = stamp_pdf(theirs, ours.signer, make_seal(), Placement(2, 30, 30), options)
    first, second = verify_pdf(sealed.pdf, anchors=[their_root, ours.root])
    assert first.coverage == "entire_revision" and first.docmdp_ok is True
    assert first.report.indication is Indication.TOTAL_PASSED, first.report.checks
    assert second.es_id == "11010000000001"
    assert second.report.indication is Indication.TOTAL_PASSED, second.report.checks


@pytest.mark.parametrize("size", [1_000_000, 20_000_000])
def test_long_file_without_line_breaks_is_refused_at_once(size: int) -> None:
    """pyHanko reads the last line backwards byte by byte (~3 s per MB): refused before."""
    for tail in (b"", b"startxref\n9\n%%EOF\n"):
        assert isinstance(_refused(b"%PDF-1.7\n" + b"[" * size + tail), PdfMalformed)
