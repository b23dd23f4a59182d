"""Opening untrusted PDF bytes with pyHanko: size limit, strict parsing, decode limits, and
every parser failure turned into ``PdfMalformed`` (a 400), never an unhandled exception."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TypeVar

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from trust.errors import DocumentTooLarge, PdfMalformed, PdfUnsupported, TrustError

DEFAULT_MAX_PDF_BYTES = 50 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
# PDF 1.7 §7.5.2: the header may follow some leading bytes, within the first 1024.
_HEADER_WINDOW = 1024
_TAIL = 1024

_T = TypeVar("_T")


def is_pdf(data: bytes) -> bool:
    return PDF_MAGIC in data[:_HEADER_WINDOW]


def check_pdf_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_PDF_BYTES) -> None:
    if len(data) > max_bytes:
        raise DocumentTooLarge(f"the PDF is {len(data)} bytes; the limit is {max_bytes}")
    if not is_pdf(data):
        raise PdfMalformed("not a PDF file: no %PDF- header")
    _check_trailer(data[-_TAIL:])


def _check_trailer(tail: bytes) -> None:
    """A ``startxref`` line starting in the last 1024 bytes (PDF 1.7 §7.5.5), before
    pyHanko looks for it: it reads the file's last lines backwards one byte at a time in
    Python, ~3 s per megabyte of a file without line breaks."""
    at = tail.rfind(b"startxref")
    if at <= 0 or tail[at - 1] not in b"\r\n" or b"%%EOF" not in tail[at:]:
        raise PdfMalformed("no startxref line and %%EOF marker at the end of the file")


def parsing(action: Callable[[], _T], what: str) -> _T:
    """``action()``, with anything pyHanko's parser raises on broken input as ``PdfMalformed``.

    The parser reports damage as PdfError but also as KeyError, TypeError, ValueError and
    friends from deep inside; all of them mean the input does not hold together."""
    try:
        return action()
    except TrustError:
        raise
    except PdfError as exc:
        raise PdfMalformed(f"{what}: {_short(exc)}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise PdfMalformed(f"{what}: {type(exc).__name__} {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    return str(exc)[:200]


def _not_encrypted(reader: PdfFileReader) -> None:
    if reader.encrypted:
        raise PdfUnsupported("encrypted PDF files are not supported")


def open_reader(data: bytes, max_bytes: int = DEFAULT_MAX_PDF_BYTES) -> PdfFileReader:
    check_pdf_bytes(data, max_bytes)

    def _open() -> PdfFileReader:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        _not_encrypted(reader)
        reader.root  # noqa: B018  (resolves the catalog: a broken trailer fails here)
        return reader

    return parsing(_open, "cannot read the PDF")


def open_writer(data: bytes, max_bytes: int = DEFAULT_MAX_PDF_BYTES) -> IncrementalPdfFileWriter:
    """A writer that appends an incremental update to ``data``, leaving its bytes as they are."""
    check_pdf_bytes(data, max_bytes)

    def _open() -> IncrementalPdfFileWriter:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=True)
        _not_encrypted(writer.prev)
        writer.root  # noqa: B018
        return writer

    return parsing(_open, "cannot read the PDF")
