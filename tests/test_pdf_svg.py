"""SVG seal pictures on PDF stamps (issue 9): drawn as vector content at the seal's size,
the signature still valid; untrusted SVG that refers to files, URLs or a DTD, and
malformed SVG, are refused with a 4xx before anything is signed."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from seals.documents.pdf_appearance import POINTS_PER_MM, PdfSeal, Placement
from seals.documents.pdf_stamp import StampOptions, stamp_pdf
from seals.documents.pdf_svg import svg_to_pdf
from seals.documents.pdf_verify import verify_pdf
from tests.pdf_support import make_pdf, pyhanko_validate, seal_png, seal_signer
from trust.errors import SealImageUnsupported
from trust.keys import KeyAlgorithm
from trust.validation.report import Indication

PLACE = Placement(page=1, x_mm=30, y_mm=40)
SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
SEAL_SVG = (
    f'<svg {SVG_NS} width="40mm" height="40mm" viewBox="0 0 100 100">'
    '<circle cx="50" cy="50" r="45" fill="none" stroke="#d00" stroke-width="4"/>'
    '<polygon points="50,20 58,42 80,42 62,56 69,78 50,64 31,78 38,56 20,42 42,42" fill="#d00"/>'
    '<text x="50" y="92" font-family="SimSun" text-anchor="middle" font-size="8">SEAL</text>'
    "</svg>"
).encode()
# Path construction and painting operators, as a content stream writes them.
PATH_OPERATORS = re.compile(rb"(?m)(^|\s)(m|l|c|re|h)\s.*(^|\s)(S|f|B|f\*|b)(\s|$)", re.S)


def _stamp(image: bytes, width_mm: float = 42, height_mm: float = 30) -> bytes:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    seal = PdfSeal("11010000000002", "测试章", image, width_mm, height_mm)
    return stamp_pdf(make_pdf(1), s.signer, seal, PLACE, StampOptions(chain=s.chain)).pdf


def _streams(xobject: generic.StreamObject) -> list[bytes]:
    """The content of a form XObject and of every form XObject it draws, decoded."""
    found = [xobject.data]
    for ref in xobject.get("/Resources", generic.DictionaryObject()).get("/XObject", {}).values():
        child = ref.get_object()
        if child.get("/Subtype") == "/Form":
            found += _streams(child)
    return found


def test_svg_seal_is_drawn_as_vectors_at_its_size_and_the_signature_validates(
    tmp_path: Path,
) -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    seal = PdfSeal("11010000000002", "测试章", SEAL_SVG, 42, 30)
    result = stamp_pdf(make_pdf(1), s.signer, seal, PLACE, StampOptions(chain=s.chain))

    reader = PdfFileReader(io.BytesIO(result.pdf))
    field = reader.root["/AcroForm"]["/Fields"][0]
    x1, y1, x2, y2 = (float(v) for v in field["/Rect"])
    assert x2 - x1 == pytest.approx(42 / 25.4 * 72, abs=1)
    assert y2 - y1 == pytest.approx(30 * POINTS_PER_MM, abs=1)
    streams = _streams(field["/AP"]["/N"])
    assert any(PATH_OPERATORS.search(data) for data in streams), streams
    # The SVG is drawn, not rasterised: no image XObject anywhere in the appearance.
    assert b"/Im" not in b"".join(streams) and b" BI " not in b"".join(streams)

    (report,) = verify_pdf(result.pdf, anchors=[s.root])
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks
    rc, out = pyhanko_validate(result.pdf, s.root, tmp=tmp_path)
    assert rc == 0 and "INTACT:TRUSTED,UNTOUCHED" in out, out


def test_svg_picture_bytes_change_the_drawing() -> None:
    """The drawing comes from the SVG: another shape gives other path content."""
    square = f'<svg {SVG_NS} width="20" height="20"><rect width="20" height="20"/></svg>'
    assert svg_to_pdf(square.encode()) != svg_to_pdf(SEAL_SVG)


def test_svg_with_an_embedded_png_is_drawn() -> None:
    png = base64.b64encode(seal_png(40)).decode()
    svg = (
        f'<svg {SVG_NS} width="40" height="40">'
        f'<image width="40" height="40" xlink:href="data:image/png;base64,{png}"/></svg>'
    )
    assert _stamp(svg.encode())[:5] == b"%PDF-"


def test_svg_embedding_a_huge_or_broken_picture_is_refused() -> None:
    huge = io.BytesIO()
    Image.new("1", (5000, 5000)).save(huge, "PNG")  # a few KB that decode to 25 Mpixels
    for picture in (huge.getvalue(), b"not a png"):
        svg = (
            f'<svg {SVG_NS} width="40" height="40"><image width="40" height="40" '
            f'href="data:image/png;base64,{base64.b64encode(picture).decode()}"/></svg>'
        )
        with pytest.raises(SealImageUnsupported):
            _stamp(svg.encode())


@pytest.mark.parametrize(
    "svg",
    [
        f'<svg {SVG_NS} width="40" height="40"><image width="40" height="40" '
        'xlink:href="file:///etc/passwd"/></svg>',
        f'<svg {SVG_NS} width="40" height="40"><image width="40" height="40" '
        'href="/etc/passwd"/></svg>',
        f'<svg {SVG_NS} width="40" height="40"><image width="9" height="9" href="x.png"/></svg>',
        f'<svg {SVG_NS} width="40" height="40"><use xlink:href="other.svg#a"/></svg>',
        f'<svg {SVG_NS} width="40" height="40"><image href="http://127.0.0.1:9/x.png"/></svg>',
        f'<svg {SVG_NS} width="40" height="40"><style>@import url(x.css);</style></svg>',
        f'<svg {SVG_NS} width="40" height="40"><rect style="fill:url(file:///x)"/></svg>',
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<svg {SVG_NS} width='40' height='40'><text>&x;</text></svg>",
    ],
    ids=["file-url", "absolute", "relative", "use-file", "http", "css-import", "css-url", "dtd"],
)
def test_svg_that_refers_to_anything_outside_itself_is_refused(svg: str) -> None:
    with pytest.raises(SealImageUnsupported) as raised:
        _stamp(svg.encode())
    assert raised.value.status == 422


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle r="5">',
        b"<svg width='40' height='40'/>",  # no SVG namespace
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',  # no size
        b'<svg xmlns="http://www.w3.org/2000/svg" width="0" height="40"/>',
        b"<svg \xff\xfe",
    ],
    ids=["unclosed", "no-namespace", "no-size", "zero-width", "not-xml"],
)
def test_malformed_svg_is_refused(svg: bytes) -> None:
    with pytest.raises(SealImageUnsupported) as raised:
        _stamp(svg)
    assert raised.value.status == 422


def test_svg_with_odd_values_is_drawn_or_refused_never_a_500() -> None:
    svg = (
        f'<svg {SVG_NS} width="40" height="40"><path d="M 1 Z Q"/>'
        '<rect width="x" transform="rotate(nan)"/><use xlink:href="#nowhere"/>'
        '<circle r="-3" style="fill:url(#missing)"/></svg>'
    )
    try:
        pdf = _stamp(svg.encode())
    except SealImageUnsupported as exc:
        assert exc.status == 422
    else:
        assert pdf[:5] == b"%PDF-"
