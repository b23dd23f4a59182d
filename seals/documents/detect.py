"""Which document format bytes hold, from their content only (never the file name)."""

from __future__ import annotations

import io
import zipfile

from seals.documents.report import DocumentFormat
from trust.errors import UnsupportedDocumentFormat

_ZIP_MAGIC = b"PK\x03\x04"
_PDF_MAGIC = b"%PDF-"
# PDF readers accept the header anywhere in the first 1024 bytes (ISO 32000 Annex H).
_PDF_WINDOW = 1024


def detect_format(data: bytes) -> DocumentFormat:
    """OFD for a zip whose central directory names ``OFD.xml``; PDF for ``%PDF-`` near
    the start; ``UnsupportedDocumentFormat`` (415) for anything else."""
    if data.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "OFD.xml" in archive.namelist():
                    return DocumentFormat.OFD
        # A damaged zip is no OFD we can name; zipfile raises assorted errors.
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError):
            pass
        raise UnsupportedDocumentFormat("a zip package without OFD.xml is not an OFD document")
    if _PDF_MAGIC in data[:_PDF_WINDOW]:
        return DocumentFormat.PDF
    raise UnsupportedDocumentFormat("neither an OFD package nor a PDF file")
