"""Safe reading of OFD packages: hostile archives are refused quickly, with bounded
memory, before anything is parsed."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from seals.documents.ofd_package import PackageLimits, read_package, resolve
from seals.documents.ofd_verify import verify_ofd
from tests.ofd_support import make_ofd, raw_zip, sample
from trust.errors import DocumentArchiveUnsafe, DocumentMalformed, DocumentXmlInvalid
from trust.settings import Settings

OFD_XML = b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>'


def _bomb(size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("OFD.xml", OFD_XML)
        with archive.open("Doc_0/bomb.xml", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                entry.write(chunk)
    return out.getvalue()


def test_samples_read() -> None:
    package = read_package(sample("v4signed.ofd"))
    assert "OFD.xml" in package and "/OFD.xml" in package
    assert len(package.names) == 16


def test_zip_bomb_refused_fast() -> None:
    bomb = _bomb(64 << 20)  # 64 MiB of zeros in about 64 kB
    assert len(bomb) < 1 << 20
    started = time.monotonic()
    with pytest.raises(DocumentArchiveUnsafe):
        read_package(bomb)
    assert time.monotonic() - started < 1.0


def test_lying_declared_size_is_caught() -> None:
    size = 8 << 20
    honest = raw_zip([("OFD.xml", OFD_XML), ("Doc_0/big.xml", bytes(size))])
    # Declare 100 bytes instead (local header and central directory): inflating stops
    # there, and the truncated entry must not pass as the file.
    declared = size.to_bytes(4, "little")
    assert honest.count(declared) == 2
    lying = honest.replace(declared, (100).to_bytes(4, "little"))
    with pytest.raises(DocumentMalformed):
        read_package(lying, PackageLimits(max_ratio=10_000))


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../evil.xml",
        "Doc_0/../../evil.xml",
        "Doc_0\\evil.xml",
        "C:/evil.xml",
        "Doc_0//x.xml",
        "./OFD.xml",
    ],
)
def test_unsafe_names_refused(name: str) -> None:
    with pytest.raises(DocumentArchiveUnsafe, match="not a plain relative path"):
        read_package(raw_zip([("OFD.xml", OFD_XML), (name, b"x")]))


def test_duplicate_names_refused() -> None:
    with pytest.warns(UserWarning):  # zipfile warns when writing a duplicate
        data = raw_zip([("OFD.xml", OFD_XML), ("OFD.xml", b"<other/>")])
    with pytest.raises(DocumentArchiveUnsafe, match="twice"):
        read_package(data)


def test_too_many_entries_refused() -> None:
    data = raw_zip([(f"f{i}", b"") for i in range(20)], zipfile.ZIP_STORED)
    with pytest.raises(DocumentArchiveUnsafe, match="entries"):
        read_package(data, PackageLimits(max_entries=10))


def test_xml_size_limit_applies_to_xml_files_only() -> None:
    data = raw_zip([("OFD.xml", OFD_XML), ("Doc_0/Res/image.png", bytes(4096))])
    limits = PackageLimits(max_xml_size=1024)
    assert "Doc_0/Res/image.png" in read_package(data, limits)
    big = raw_zip([("OFD.xml", OFD_XML), ("Doc_0/Content.XML", bytes(4096))])
    with pytest.raises(DocumentArchiveUnsafe, match="XML file 'Doc_0/Content.XML'"):
        read_package(big, limits)


def test_limits_come_from_the_settings() -> None:
    settings = Settings(
        ofd_max_entries=7,
        ofd_max_total_bytes=5000,
        ofd_max_entry_bytes=4000,
        ofd_max_ratio=9,
        ofd_max_xml_bytes=3000,
    )
    assert PackageLimits.from_settings(settings) == PackageLimits(7, 5000, 4000, 9, 3000)
    assert PackageLimits.from_settings(Settings()) == PackageLimits()  # one set of defaults


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04garbage", b"%PDF-1.7", make_ofd()[:-30]])
def test_not_a_zip(data: bytes) -> None:
    with pytest.raises(DocumentMalformed):
        verify_ofd(data)


def test_zip_without_ofd_xml() -> None:
    with pytest.raises(DocumentMalformed, match="OFD.xml"):
        verify_ofd(raw_zip([("readme.txt", b"hello")]))


def test_ofd_xml_in_another_namespace() -> None:
    data = raw_zip([("OFD.xml", b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2011"/>')])
    with pytest.raises(DocumentXmlInvalid, match="namespace|expected"):
        verify_ofd(data)


def test_billion_laughs_refused_fast() -> None:
    entities = "".join(
        f'<!ENTITY l{i} "{"&l" + str(i - 1) + ";" * 1}' + f'{("&l" + str(i - 1) + ";") * 9}">'
        for i in range(1, 10)
    )
    xml = f'<?xml version="1.0"?><!DOCTYPE OFD [<!ENTITY l0 "ha">{entities}]><OFD>&l9;</OFD>'
    started = time.monotonic()
    with pytest.raises(DocumentXmlInvalid):
        verify_ofd(raw_zip([("OFD.xml", xml.encode())]))
    assert time.monotonic() - started < 1.0


def test_external_entity_not_resolved() -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(DocumentXmlInvalid, match="DTD"):
        verify_ofd(raw_zip([("OFD.xml", xml)]))


@pytest.mark.parametrize(
    ("location", "base", "expected"),
    [
        ("/Doc_0/Signs/Signatures.xml", "", "Doc_0/Signs/Signatures.xml"),
        ("Doc_0/Document.xml", "", "Doc_0/Document.xml"),
        ("Pages/Page_0/Content.xml", "Doc_0", "Doc_0/Pages/Page_0/Content.xml"),
        ("../Res/a.png", "Doc_0/Pages", "Doc_0/Res/a.png"),
    ],
)
def test_resolve(location: str, base: str, expected: str) -> None:
    assert resolve(location, base) == expected


@pytest.mark.parametrize("location", ["../../etc/passwd", "/..", "", "a\\b"])
def test_resolve_refuses_escapes(location: str) -> None:
    with pytest.raises(DocumentMalformed):
        resolve(location, "Doc_0")


def test_written_package_reads_back_everywhere(tmp_path: Path) -> None:
    """Unchanged entries are copied compressed, changed ones deflated; zipfile and the
    Info-ZIP ``unzip`` tool both read the result with CRCs intact."""
    original = sample("v4signed.ofd")
    package = read_package(original)
    written = package.with_files({"OFD.xml": b"<changed/>", "Doc_0/新.xml": b"<new/>"}).to_bytes()
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.testzip() is None
        assert archive.read("OFD.xml") == b"<changed/>"
        assert archive.read("Doc_0/新.xml") == b"<new/>"
        assert archive.read("Doc_0/Res/qr.png") == package.read("Doc_0/Res/qr.png")
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        copied = source.getinfo("Doc_0/Tpls/Tpl_0/Content.xml")
        local = original[copied.header_offset :]
        start = 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    # The compressed bytes of an untouched entry appear unchanged in the output.
    assert local[start : start + copied.compress_size] in written
    path = tmp_path / "written.ofd"
    path.write_bytes(written)
    if shutil.which("unzip") is None:
        pytest.skip("unzip not installed")
    result = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
