"""Where and how a seal appears on a PDF page: the seal image as a pyHanko stamp style, the
field rectangle from a page number and millimetres, and a field name that carries the esID.

Positions are given like OFD's: ``x_mm`` from the page's left edge and ``y_mm`` from its
top edge to the stamp's top-left corner; PDF user space starts at the bottom left, in
points (1/72 inch). Pages count from 1.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from urllib.parse import quote, unquote

from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import PdfContent
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.layout import (
    AxisAlignment,
    BoxConstraints,
    InnerScaling,
    Margins,
    SimpleBoxLayoutRule,
)
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.stamp.static import StaticStampStyle

from seals.documents.pdf_svg import MAX_IMAGE_PIXELS, SvgPicture, is_svg
from trust.errors import DocumentPageNotFound, SealImageInvalid, StampOutsidePage

POINTS_PER_MM = 72 / 25.4
FIELD_PREFIX = "Seal_"


@dataclass(frozen=True)
class PdfSeal:
    """What the stamp shows and records: the seal's identity and picture at its size."""

    es_id: str
    name: str
    image: bytes  # SVG, or PNG (any raster format Pillow reads)
    width_mm: float
    height_mm: float


@dataclass(frozen=True)
class Placement:
    page: int  # 1-based
    x_mm: float  # left edge of the page -> left edge of the stamp
    y_mm: float  # top edge of the page -> top edge of the stamp


def seal_style(seal: PdfSeal) -> StaticStampStyle:
    """The seal picture stretched over the whole field, no border, fully opaque: an SVG as
    vector drawing (``pdf_svg``), a raster picture as an image."""
    background: PdfContent
    if is_svg(seal.image):
        background = SvgPicture(seal.image)
    else:
        image = _load_image(seal.image)
        background = PdfImage(image, box=BoxConstraints(image.width, image.height))
    return StaticStampStyle(
        background=background,
        background_opacity=1.0,
        border_width=0,
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID,
            y_align=AxisAlignment.ALIGN_MID,
            margins=Margins(),
            inner_content_scaling=InnerScaling.STRETCH_FILL,
        ),
    )


def _load_image(data: bytes) -> Image.Image:
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise SealImageInvalid(f"the seal picture is {image.width}x{image.height} pixels")
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SealImageInvalid(f"the seal picture cannot be read: {exc}") from None
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    return image


def field_box(
    reader: PdfFileReader, seal: PdfSeal, placement: Placement
) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) in the page's user space; the stamp must lie on the page."""
    count = int(reader.root["/Pages"]["/Count"])
    if not 1 <= placement.page <= count:
        raise DocumentPageNotFound(f"page {placement.page} of a {count}-page document")
    numbers = (placement.x_mm, placement.y_mm, seal.width_mm, seal.height_mm)
    if not all(math.isfinite(n) for n in numbers) or min(seal.width_mm, seal.height_mm) <= 0:
        raise StampOutsidePage(f"stamp position and size must be finite and positive: {numbers}")
    left, bottom, right, top = _media_box(reader, placement.page - 1)
    width, height = seal.width_mm * POINTS_PER_MM, seal.height_mm * POINTS_PER_MM
    x1 = left + placement.x_mm * POINTS_PER_MM
    y2 = top - placement.y_mm * POINTS_PER_MM
    box = round(x1), round(y2 - height), round(x1 + width), round(y2)
    if placement.x_mm < 0 or placement.y_mm < 0 or box[2] > right or box[1] < bottom:
        raise StampOutsidePage(
            f"a {seal.width_mm}x{seal.height_mm} mm stamp at ({placement.x_mm}, "
            f"{placement.y_mm}) mm leaves page {placement.page}"
        )
    return box


def _media_box(reader: PdfFileReader, index: int) -> tuple[float, float, float, float]:
    page, _ = reader.find_page_for_modification(index)
    node = page.get_object()
    # /MediaBox is inheritable (PDF 1.7 §7.7.3.4): walk up the page tree.
    while node is not None:
        box = node.get("/MediaBox")
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
        parent = node.get("/Parent")
        node = parent.get_object() if isinstance(parent, generic.PdfObject) else None
    raise DocumentPageNotFound(f"page {index + 1} has no media box")


def field_name(reader: PdfFileReader, es_id: str) -> str:
    """``Seal_<esID>``, with ``#2``, ``#3``... when the seal already signed this file.

    Field names may not contain periods (they separate the parts of a qualified name), so
    ``.``, ``#`` and ``%`` in the esID are percent-encoded; ``seal_id_from_field`` undoes it."""
    base = FIELD_PREFIX + quote(es_id, safe="").replace(".", "%2E")
    taken = {name for name, _, _ in enumerate_sig_fields(reader, filled_status=None)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}#{n}"
    return name


def seal_id_from_field(name: str) -> str | None:
    """The esID a ``field_name`` carries, or None for other fields."""
    if not name.startswith(FIELD_PREFIX):
        return None
    return unquote(name[len(FIELD_PREFIX) :].split("#", 1)[0]) or None
