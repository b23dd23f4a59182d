"""PDF test material: a hand-written PDF generator (no pyHanko or pypdf; any number of A4
pages of text, optionally padded with incompressible image data to reach a size, as the
documents benchmark's 10 pages / 1 MB), a PNG seal picture, seal signer chains, the
service TSA as a stamping callable, and the pyhanko command line as an independent
validator and signer."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl, pem, x509
from cryptography.hazmat.primitives import serialization

from seals.documents.pdf_appearance import PdfSeal
from seals.documents.pdf_signer import TimestampFunction
from tests.conftest import need_service
from tests.tsa_support import authority, migrated
from tests.validation_support import pyca_crl, pyca_pki, sm2_cert
from trust.clock import FakeClock
from trust.cms import KeySigner
from trust.keys import KeyAlgorithm, load_private_key

A4 = (595, 842)  # points


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def seal_png(size: int = 120) -> bytes:
    """A red ring on a transparent background, as RGBA PNG: what a round seal looks like."""
    rows = []
    centre, outer, inner = (size - 1) / 2, size / 2 - 1, size / 2 - 8
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            r = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            row += b"\xd0\x10\x10\xff" if inner <= r <= outer or r < 6 else b"\x00\x00\x00\x00"
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _png_chunk(b"IEND", b"")
    )


def make_pdf(
    pages: int = 1, *, size: int = 0, texts: Sequence[str] = (), catalog_extra: bytes = b""
) -> bytes:
    """A PDF 1.7 file with ``pages`` A4 pages, each with a line of text, written by hand.

    With ``size`` (bytes), every page also carries an uncompressed grey image XObject of
    random pixels so that the file reaches about that size (the documents benchmark's
    "10 pages, 1 MB"). ``catalog_extra`` is written into the catalog dictionary as is."""
    padding = max(0, size - 1200 * pages) // pages if size else 0
    side = int(padding**0.5)
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in once the page tree's number is known
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for n in range(pages):
        text = texts[n] if n < len(texts) else f"Page {n + 1}: official notice"
        ops = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode("latin-1")
        resources = f"/Font << /F1 {font} 0 R >>".encode()
        if side:
            image = add(
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
                b" /BitsPerComponent 8 /Length %d >>\nstream\n"
                % (side, side, side * side)
                + os.urandom(side * side)
                + b"\nendstream"
            )
            ops += b"\nq 200 0 0 200 72 400 cm /Im1 Do Q"
            resources += f" /XObject << /Im1 {image} 0 R >>".encode()
        content = add(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << %s >>"
                b" /Contents %d 0 R >>" % (pages_obj, A4[0], A4[1], resources, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R %s>>" % (pages_obj, catalog_extra)
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        pages,
    )

    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, xref)
    )
    return out.getvalue()


def crafted_pdf(array_bytes: int) -> bytes:
    """A valid one-page PDF whose catalog holds an array of ``array_bytes`` bytes of
    zeros: cheap to send, slow for pyHanko's Python tokenizer (~90 s for 4 MB)."""
    return make_pdf(1, catalog_extra=b"/Junk [" + b"0 " * (array_bytes // 2) + b"] ")


@dataclass(frozen=True)
class SealSigner:
    """A seal signer's in-memory key and certificate (non-repudiation, as pyHanko's
    default key-usage policy wants) with its chain: root first."""

    signer: KeySigner
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # CA certificates below the root, for the CMS
    crls: tuple[crl.CertificateList, ...] = ()  # current CRLs of root and sub CA (pyca only)


def seal_signer(algorithm: KeyAlgorithm, label: str = "PDF Test") -> SealSigner:
    """A root, a sub CA and a leaf from ``validation_support`` (ECDSA P-256, RSA or SM2);
    ``label`` starts the SM2 certificates' names (the pyca ones have fixed names)."""
    if algorithm is KeyAlgorithm.SM2:
        sm2_root = sm2_cert(f"{label} Root SM2", ca=True)
        sm2_sub = sm2_cert(f"{label} Sub CA SM2", sm2_root, ca=True)
        sm2_leaf = sm2_cert(f"{label} Seal SM2", sm2_sub)
        return SealSigner(KeySigner(sm2_leaf.key, sm2_leaf.cert), sm2_root.cert, (sm2_sub.cert,))
    pki = pyca_pki("rsa" if algorithm.startswith("rsa") else "ecdsa")
    leaf_key = load_private_key(
        pki.leaf.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    now = datetime.now(UTC)
    return SealSigner(
        KeySigner(leaf_key, x509.Certificate.load(pki.leaf.der)),
        x509.Certificate.load(pki.root.der),
        (x509.Certificate.load(pki.sub.der),),
        tuple(
            crl.CertificateList.load(pyca_crl(ca, this_update=now - timedelta(hours=1)))
            for ca in (pki.root, pki.sub)
        ),
    )


def make_seal(
    es_id: str = "11010000000001", *, width_mm: float = 40, height_mm: float = 40
) -> PdfSeal:
    return PdfSeal(es_id, "测试市人民政府公章", seal_png(), width_mm, height_mm)


def tsa_function(database_url: str, unit: str = "ecdsa") -> TimestampFunction:
    """The service's TSA (``tsa_support`` units, clock at now) as a stamping callable."""
    tsa = authority(migrated(database_url), FakeClock(datetime.now(UTC)))
    return lambda hash_algorithm, digest: tsa.issue(hash_algorithm, digest, unit=unit).token


def _pyhanko_cli() -> str:
    """The ``pyhanko`` executable (pyhanko-cli, a dev dependency), on PATH or in the venv."""
    exe = shutil.which("pyhanko") or str(Path(sys.executable).with_name("pyhanko"))
    if not Path(exe).exists():
        need_service("pyhanko-cli", "the pyhanko command line (pyhanko-cli) is not installed")
    return exe


def pyhanko_validate(pdf: bytes, *roots: x509.Certificate, tmp: Path) -> tuple[int, str]:
    """``pyhanko sign validate --trust ROOT ... FILE`` as a separate process: (rc, output)."""
    exe = _pyhanko_cli()
    target = tmp / "signed.pdf"
    target.write_bytes(pdf)
    args = [exe, "sign", "validate", "--no-revocation-check"]
    for n, root in enumerate(roots):
        path = tmp / f"root{n}.pem"
        path.write_bytes(pem.armor("CERTIFICATE", root.dump()))
        args += ["--trust", str(path)]
    done = subprocess.run(
        [*args, "--trust-replace", str(target)], capture_output=True, check=False, timeout=120
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def pyhanko_sign(pdf: bytes, *, tmp: Path) -> tuple[bytes, x509.Certificate]:
    """``pdf`` signed by ``pyhanko sign addsig`` (PAdES, ECDSA key in a PEM file) as a
    separate process: a signature our code had no part in. Returns (PDF, root)."""
    exe = _pyhanko_cli()
    pki = pyca_pki("ecdsa")
    files = {
        "key.pem": pki.leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "cert.pem": pem.armor("CERTIFICATE", pki.leaf.der),
        "sub.pem": pem.armor("CERTIFICATE", pki.sub.der),
        "in.pdf": pdf,
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    args = [exe, "sign", "addsig", "--field", "1/300,600,400,700/Theirs", "--use-pades"]
    args += ["pemder", "--key", str(tmp / "key.pem"), "--cert", str(tmp / "cert.pem")]
    args += ["--chain", str(tmp / "sub.pem"), "--no-pass"]
    done = subprocess.run(
        [*args, str(tmp / "in.pdf"), str(tmp / "out.pdf")],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode("utf-8", "replace")
    return (tmp / "out.pdf").read_bytes(), x509.Certificate.load(pki.root.der)
