"""SVG seal pictures for PDF stamps: the SVG drawn as a one-page vector PDF (svglib, then
reportlab) and placed in the stamp appearance as a form XObject.

The SVG comes from whoever registered the seal, so it is untrusted: it is parsed with no
DTD, entities or network; any reference that is not a fragment (``#id``) or an embedded
``data:`` PNG/JPEG is refused, and svglib is handed no file path, so it resolves nothing
on disk either; fonts are the 14 standard PDF fonts only (svglib would otherwise open
font files named after ``font-family`` and run ``fc-match``).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import uuid

from lxml import etree
from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils.content import PdfContent
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from reportlab.graphics import renderPDF
from svglib.fonts import DEFAULT_FONT_NAME, STANDARD_FONT_NAMES, FontMap
from svglib.svglib import SvgRenderer

from seals.documents.ofd_xml import hardened_parser
from trust.errors import SealImageUnsupported

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# What svglib itself decodes from a data: URI; other targets would be fetched or opened.
_LOCAL_HREF = re.compile(r"\A\s*(#|data:image/(png|jpe?g);base64,)")
_DATA_HREF = re.compile(r"\A\s*data:image/(png|jpe?g);base64,")
# A seal picture is small; anything larger is a mistake or a decompression bomb (raster
# seal pictures and pictures embedded in an SVG alike).
MAX_IMAGE_PIXELS = 4096 * 4096
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.I)

_PARSER = hardened_parser(remove_comments=True)


def is_svg(data: bytes) -> bool:
    return data.lstrip()[:5] in (b"<?xml", b"<svg ") or b"<svg" in data[:512]


def svg_to_pdf(data: bytes) -> bytes:
    """A one-page PDF whose page is the SVG's canvas (its width and height, or viewBox)."""
    root = _parse(data)
    try:
        # A source that is not a path: svglib then resolves no external reference at all.
        drawing = SvgRenderer(io.BytesIO(data), font_map=_StandardFonts()).render(root)
    except Exception as exc:  # svglib raises many types on odd input; none is a 500
        raise SealImageUnsupported(f"the SVG seal picture cannot be drawn: {exc}") from None
    if not (drawing.width > 0 and drawing.height > 0):
        raise SealImageUnsupported("the SVG seal picture has no width and height or viewBox")
    pdf: bytes = renderPDF.drawToString(drawing)
    return pdf


def _parse(data: bytes) -> etree._Element:
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SealImageUnsupported(f"the SVG seal picture is not well-formed XML: {exc}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise SealImageUnsupported("the SVG seal picture declares a DTD")
    root = tree.getroot()
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise SealImageUnsupported(f"the seal picture's root element is {root.tag}, not svg")
    for element in root.iter():
        if not isinstance(element.tag, str):  # processing instructions
            continue
        href = element.get(_XLINK_HREF) or element.get("href")
        if href is not None and not _LOCAL_HREF.match(href):
            raise SealImageUnsupported(
                f"the SVG seal picture refers to {href[:80]!r}; only #fragments and embedded "
                "data: PNG or JPEG pictures are drawn"
            )
        if href is not None and (data_uri := _DATA_HREF.match(href)):
            _check_embedded(href[data_uri.end() :])
        styles = [element.get("style") or ""]
        if element.tag == f"{{{_SVG_NS}}}style":
            styles.append(element.text or "")
        if any("@import" in s or _EXTERNAL_URL.search(s) for s in styles):
            raise SealImageUnsupported("the SVG seal picture's style refers to another file")
    return root


def _check_embedded(b64: str) -> None:
    """An embedded picture svglib will decode: readable, and not a decompression bomb."""
    try:
        # Image.open reads the header only; svglib decodes the pixels later.
        with Image.open(io.BytesIO(base64.decodebytes(b64.encode("ascii")))) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, binascii.Error) as exc:
        raise SealImageUnsupported(f"a picture in the SVG cannot be read: {exc}") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise SealImageUnsupported(f"a picture in the SVG is {width}x{height} pixels")


class _StandardFonts(FontMap):
    """The standard PDF fonts and nothing else: no font files, no fontconfig."""

    def find_font(
        self, font_name: str, weight: str = "normal", style: str = "normal"
    ) -> tuple[str, bool]:
        family = self._family_index.get(font_name.lower(), font_name)
        name = FontMap.build_internal_name(family, weight, style)
        if name in STANDARD_FONT_NAMES:
            return name, True
        entry = self._map.get(name)  # the aliases FontMap registers (serif, Arial...)
        if entry is None:
            return DEFAULT_FONT_NAME, False
        return str(entry["rlgFont"]), bool(entry["exact"])


class SvgPicture(PdfContent):
    """The SVG's page as a form XObject sized to its canvas (pyHanko's ``ImportedPdfPage``
    reads a file; this one reads bytes)."""

    def __init__(self, svg: bytes) -> None:
        super().__init__()
        self._pdf = svg_to_pdf(svg)

    def render(self) -> bytes:
        xobject = self._ensure_writer.import_page_as_xobject(PdfFileReader(io.BytesIO(self._pdf)))
        name = "/Seal" + binascii.hexlify(uuid.uuid4().bytes).decode("ascii")
        self.resources.xobject[name] = xobject
        x1, y1, x2, y2 = (float(v) for v in xobject.get_object()["/BBox"])
        self.box = BoxConstraints(width=abs(x2 - x1), height=abs(y2 - y1))
        return name.encode("ascii") + b" Do"
