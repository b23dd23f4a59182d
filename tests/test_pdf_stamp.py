"""PDF stamping: a visible seal and a PAdES signature through a CmsSigner, checked by pyHanko's
own command line (a separate process), by our verifier, and for SM2 by the pure gmssl
backend; placement and picture errors."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import parser, pem, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner

from keystore.model import Algorithm
from seals.documents.pdf_appearance import POINTS_PER_MM, PdfSeal, Placement
from seals.documents.pdf_signer import CmsPdfSigner
from seals.documents.pdf_stamp import (
    PadesLevel,
    StampOptions,
    TimestampMode,
    ValidationMaterial,
    stamp_pdf,
)
from seals.documents.pdf_verify import verify_pdf
from tests.ca_support import openssl_output, run_openssl, write
from tests.pdf_support import (
    make_pdf,
    make_seal,
    pyhanko_validate,
    seal_png,
    seal_signer,
    tsa_function,
)
from tests.signers_support import USER, make_registry
from tests.tsa_support import tsa_chain
from trust import oids
from trust.clock import FakeClock
from trust.cms import RFC5652, load_content_info
from trust.errors import (
    DocumentPageNotFound,
    DocumentProtected,
    InvalidSignature,
    SealImageInvalid,
    StampOutsidePage,
    TrustError,
)
from trust.keys import KeyAlgorithm
from trust.sm2.backend import DEFAULT_SIGNER_ID
from trust.sm2.select import get_backend
from trust.validation.report import Indication

PLACE = Placement(page=1, x_mm=120, y_mm=200)
INTACT_TRUSTED = "INTACT:TRUSTED,UNTOUCHED"


def _signature_dict(pdf: bytes, index: int = 0):  # type: ignore[no-untyped-def]
    reader = PdfFileReader(io.BytesIO(pdf))
    field = reader.root["/AcroForm"]["/Fields"][index]
    return field, field["/V"]


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.RSA_2048])
def test_pyhanko_cli_validates_the_stamp_as_intact_and_trusted(
    algorithm: KeyAlgorithm, tmp_path: Path
) -> None:
    s = seal_signer(algorithm)
    result = stamp_pdf(make_pdf(3), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain))
    assert result.level is PadesLevel.B_B

    rc, out = pyhanko_validate(result.pdf, s.root, tmp=tmp_path)
    assert rc == 0, out
    assert f"{result.field_name}:" in out and INTACT_TRUSTED in out, out

    # Against another root, the same file is intact but untrusted: the CLI really checks.
    other = seal_signer(algorithm)
    rc, out = pyhanko_validate(result.pdf, other.root, tmp=tmp_path)
    assert rc != 0 and "UNTRUSTED" in out, out


def test_signature_dictionary_carries_the_seal_and_pades_subfilter() -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    seal = make_seal("3201000012345.6")
    result = stamp_pdf(
        make_pdf(), s.signer, seal, PLACE, StampOptions(reason="同意", location="南京")
    )
    field, sig = _signature_dict(result.pdf)
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"
    assert sig["/Name"] == seal.name and sig["/Reason"] == "同意" and sig["/Location"] == "南京"
    assert "." not in field["/T"]  # field names may not hold periods
    assert result.field_name == field["/T"] and result.es_id == seal.es_id

    (report,) = verify_pdf(result.pdf, anchors=[s.root])
    assert report.es_id == seal.es_id and report.seal_name == seal.name
    assert report.reason == "同意" and report.location == "南京"


def test_visible_stamp_has_the_seal_size_and_position() -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    seal = make_seal(width_mm=42, height_mm=30)
    result = stamp_pdf(make_pdf(2), s.signer, seal, Placement(2, 20, 35), StampOptions())
    reader = PdfFileReader(io.BytesIO(result.pdf))
    field, _ = _signature_dict(result.pdf)
    x1, y1, x2, y2 = (float(v) for v in field["/Rect"])
    assert x2 - x1 == pytest.approx(42 * POINTS_PER_MM, abs=1)
    assert y2 - y1 == pytest.approx(30 * POINTS_PER_MM, abs=1)
    assert x1 == pytest.approx(20 * POINTS_PER_MM, abs=1)
    assert y2 == pytest.approx(842 - 35 * POINTS_PER_MM, abs=1)  # A4 height minus y
    page2 = reader.root["/Pages"]["/Kids"][1]
    assert field.get_object() in [a.get_object() for a in page2["/Annots"]]
    # The appearance draws the seal picture: an image XObject with its alpha mask.
    appearance = field["/AP"]["/N"]
    xobjects = appearance["/Resources"]["/XObject"]
    images = [
        x
        for x in (v.get_object() for v in xobjects.values())
        if x.get("/Subtype") == "/Image"
        or any(
            i.get_object().get("/Subtype") == "/Image"
            for i in x.get("/Resources", {}).get("/XObject", {}).values()
        )
    ]
    assert images


def test_sm2_stamp_is_gmt0010_and_its_signature_verifies_with_gmssl() -> None:
    s = seal_signer(KeyAlgorithm.SM2)
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain))
    _, sig = _signature_dict(result.pdf)
    _, _, _, header, body, _ = parser.parse(bytes(sig["/Contents"]))  # drop the zero padding
    content = load_content_info(header + body)
    assert content["content_type"].dotted == oids.GM_CMS_SIGNED_DATA
    signed_data = content["content"]
    info = signed_data["signer_infos"][0]
    assert info["signature_algorithm"]["algorithm"].dotted == oids.SM2_SIGN
    assert info["digest_algorithm"]["algorithm"].dotted == oids.SM3
    assert signed_data["encap_content_info"]["content_type"].dotted == oids.GM_CMS_DATA

    # The independent pure-Python backend accepts the signature over the signed attributes.
    pure = get_backend("pure")
    point = s.signer.certificate.public_key["public_key"].native
    # The signature covers the DER SET OF, not the [0] IMPLICIT form in the SignerInfo.
    signed_attrs = b"\x31" + info["signed_attrs"].dump()[1:]
    signature = info["signature"].native
    pure.load_public(point).verify(signed_attrs, signature, DEFAULT_SIGNER_ID)
    with pytest.raises(InvalidSignature):
        pure.load_public(point).verify(signed_attrs[:-1] + b"\x00", signature, DEFAULT_SIGNER_ID)

    (report,) = verify_pdf(result.pdf, anchors=[s.root])
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks
    assert report.coverage == "entire_file" and report.es_id == "11010000000001"


def test_sm2_stamp_with_signature_timestamp(sqlite_url: str) -> None:
    s = seal_signer(KeyAlgorithm.SM2)
    options = StampOptions(chain=s.chain, timestamp=tsa_function(sqlite_url, "sm2"))
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, options)
    assert result.level is PadesLevel.B_T
    sm2_tsa_root = tsa_chain(KeyAlgorithm.SM2)[0]
    (report,) = verify_pdf(result.pdf, anchors=[s.root, sm2_tsa_root])
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks
    assert report.report.check("timestamp").status == "passed"
    assert report.report.proven_signing_time is not None


def test_sm2_stamp_with_document_timestamp_and_dss_is_b_lt(sqlite_url: str) -> None:
    """SM2 (GM/T 0010) B-LT: the given certificates and CRLs in a DSS revision, then a
    document timestamp revision (RFC 3161 token from the SM2 TSA unit over SM3 of the
    document); both revisions pass pyHanko's difference analysis."""
    s = seal_signer(KeyAlgorithm.SM2)
    tsa_root = tsa_chain(KeyAlgorithm.SM2)[0]
    issue, requests = tsa_function(sqlite_url, "sm2"), []

    def counted(hash_algorithm: str, digest: bytes) -> bytes:
        requests.append(hash_algorithm)
        return issue(hash_algorithm, digest)

    material = ValidationMaterial(trust_roots=[s.root, tsa_root], intermediates=s.chain)
    options = StampOptions(
        chain=s.chain, timestamp=counted, timestamp_mode=TimestampMode.DOCUMENT, validation=material
    )
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, options)
    assert result.level is PadesLevel.B_LT
    assert requests and set(requests) == {"sm3"}

    dss = PdfFileReader(io.BytesIO(result.pdf)).root["/DSS"]
    embedded = {bytes(c.get_object().data) for c in dss["/Certs"]}
    # (pyHanko keeps one certificate per issuer and serial: the helper's root and sub CA
    # share both, so the root is not checked here.)
    assert {c.dump() for c in (s.signer.certificate, *s.chain)} <= embedded

    signature, dts = verify_pdf(result.pdf, anchors=[s.root, tsa_root])
    assert dts.kind == "document_timestamp" and dts.field_name == "DocTimeStamp"
    assert dts.report.indication is Indication.TOTAL_PASSED, dts.report.checks
    assert signature.report.indication is Indication.TOTAL_PASSED, signature.report.checks
    assert signature.coverage == "entire_revision"
    assert signature.modification_level in ("lta_updates", "none")

    # The document timestamp alone (B-T), and the DSS alone (still B-B without a timestamp).
    dts_only = StampOptions(chain=s.chain, timestamp=issue, timestamp_mode=TimestampMode.DOCUMENT)
    assert stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, dts_only).level is PadesLevel.B_T
    dss_only = StampOptions(chain=s.chain, validation=material)
    plain = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, dss_only)
    assert plain.level is PadesLevel.B_B
    assert "/DSS" in PdfFileReader(io.BytesIO(plain.pdf)).root


@pytest.mark.parametrize("mode", [TimestampMode.SIGNATURE, TimestampMode.DOCUMENT])
def test_ecdsa_stamp_with_timestamp_from_the_service_tsa(
    mode: TimestampMode, sqlite_url: str, tmp_path: Path
) -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    tsa_root = tsa_chain(KeyAlgorithm.ECDSA_P256)[0]
    issue, requests = tsa_function(sqlite_url), []

    def counted(hash_algorithm: str, digest: bytes) -> bytes:
        requests.append(hash_algorithm)
        return issue(hash_algorithm, digest)

    options = StampOptions(chain=s.chain, timestamp=counted, timestamp_mode=mode)
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, options)
    assert result.level is PadesLevel.B_T
    # One token per signature timestamp; pyHanko sizes a document timestamp with a dummy.
    assert requests == ["sha256"] * (1 if mode is TimestampMode.SIGNATURE else 2)

    reports = verify_pdf(result.pdf, anchors=[s.root, tsa_root])
    assert all(r.report.indication is Indication.TOTAL_PASSED for r in reports), reports
    if mode is TimestampMode.SIGNATURE:
        (report,) = reports
        assert report.report.check("timestamp").status == "passed"
        assert report.report.timestamps
    else:
        signature, dts = reports
        assert dts.kind == "document_timestamp" and dts.field_name == "DocTimeStamp"
        assert signature.coverage == "entire_revision" and signature.modification_level in (
            "lta_updates",
            "none",
        )
    rc, out = pyhanko_validate(result.pdf, s.root, tsa_root, tmp=tmp_path)
    assert rc == 0 and "INTACT:TRUSTED" in out, out


def test_second_seal_keeps_the_first_valid() -> None:
    first, second = seal_signer(KeyAlgorithm.ECDSA_P256), seal_signer(KeyAlgorithm.SM2)
    one, two = StampOptions(chain=first.chain), StampOptions(chain=second.chain)
    once = stamp_pdf(make_pdf(2), first.signer, make_seal("A1"), PLACE, one)
    twice = stamp_pdf(once.pdf, second.signer, make_seal("B2"), Placement(2, 10, 10), two)
    again = stamp_pdf(twice.pdf, first.signer, make_seal("A1"), Placement(2, 80, 10), one)
    assert again.field_name == "Seal_A1#2"

    reports = verify_pdf(again.pdf, anchors=[first.root, second.root])
    assert [r.es_id for r in reports] == ["A1", "B2", "A1"]
    assert all(r.report.indication is Indication.TOTAL_PASSED for r in reports), reports
    assert [r.coverage for r in reports] == ["entire_revision", "entire_revision", "entire_file"]


@pytest.mark.parametrize(
    ("placement", "error"),
    [
        (Placement(0, 10, 10), DocumentPageNotFound),
        (Placement(3, 10, 10), DocumentPageNotFound),
        (Placement(1, 190, 10), StampOutsidePage),  # 190 + 40 mm > 210 mm wide
        (Placement(1, 10, 270), StampOutsidePage),  # 270 + 40 mm > 297 mm high
        (Placement(1, -1, 10), StampOutsidePage),
        (Placement(1, float("nan"), 10), StampOutsidePage),
        (Placement(1, 10, float("inf")), StampOutsidePage),
    ],
)
def test_placement_outside_the_document_is_refused(
    placement: Placement, error: type[Exception]
) -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    with pytest.raises(error) as raised:
        stamp_pdf(make_pdf(2), s.signer, make_seal(), placement)
    assert getattr(raised.value, "status", 500) < 500


@pytest.mark.parametrize(
    "image",
    [b'<svg xmlns="http://www.w3.org/2000/svg"/>', b"not a picture", seal_png()[:60]],
)
def test_unusable_seal_picture_is_refused(image: bytes) -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    with pytest.raises(SealImageInvalid):
        stamp_pdf(make_pdf(), s.signer, PdfSeal("X1", "章", image, 40, 40), PLACE)


def test_keystore_held_ecdsa_seal_key_through_the_signer_registry(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The production path: a key-store key certified by the service's CA (seal_signer
    profile); the private key never leaves the key store and each signature is audited."""
    env = make_registry(sqlite_url)
    info = env.issued(Algorithm.ECDSA_P256, profile="seal_signer", subject={"CN": "某市公章"})
    signer = env.registry.cms_signer(info.id, USER)
    chain = env.registry.chain(info.id)
    root = env.issuing[KeyAlgorithm.ECDSA_P256][0]
    before = len([r for r in env.audit.tail(500) if r.action == "key.sign"])

    result = stamp_pdf(make_pdf(2), signer, make_seal(), PLACE, StampOptions(chain=chain))

    signs = [r for r in env.audit.tail(500) if r.action == "key.sign"]
    assert len(signs) == before + 1 and signs[-1].target == info.key_id
    anchor = x509.Certificate.load(pem.unarmor(root.certificate_pem.encode())[2])
    rc, out = pyhanko_validate(result.pdf, anchor, tmp=tmp_path)
    assert rc == 0 and INTACT_TRUSTED in out, out
    (report,) = verify_pdf(result.pdf, anchors=[anchor])
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks


def test_ecdsa_stamp_with_validation_material_is_b_lt(sqlite_url: str, tmp_path: Path) -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    tsa_root = tsa_chain(KeyAlgorithm.ECDSA_P256)[0]
    material = ValidationMaterial(
        trust_roots=[s.root, tsa_root], intermediates=s.chain, crls=s.crls
    )
    without_timestamp = stamp_pdf(
        make_pdf(), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain, validation=material)
    )
    assert without_timestamp.level is PadesLevel.B_B  # B-LT builds on B-T
    options = StampOptions(chain=s.chain, validation=material, timestamp=tsa_function(sqlite_url))
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, options)
    assert result.level is PadesLevel.B_LT

    dss = PdfFileReader(io.BytesIO(result.pdf)).root["/DSS"]
    embedded_crls = {bytes(c.get_object().data) for c in dss["/CRLs"]}
    assert {c.dump() for c in s.crls} <= embedded_crls
    assert len(dss["/Certs"]) >= 2  # the sub CA and the signer at least
    rc, out = pyhanko_validate(result.pdf, s.root, tsa_root, tmp=tmp_path)
    assert rc == 0 and "INTACT:TRUSTED" in out, out
    (report,) = verify_pdf(result.pdf, anchors=[s.root, tsa_root], crls=s.crls)
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.SM2])
def test_certified_document_that_permits_no_changes_is_not_stamped(
    algorithm: KeyAlgorithm,
) -> None:
    author = seal_signer(KeyAlgorithm.ECDSA_P256)
    meta = PdfSignatureMetadata(
        field_name="Author", certify=True, docmdp_permissions=MDPPerm.NO_CHANGES
    )
    certified = (
        PdfSigner(meta, CmsPdfSigner(author.signer, author.chain))
        .sign_pdf(IncrementalPdfFileWriter(io.BytesIO(make_pdf())))
        .getvalue()
    )
    s = seal_signer(algorithm)
    with pytest.raises(DocumentProtected):
        stamp_pdf(certified, s.signer, make_seal(), PLACE)


def test_randomly_damaged_input_is_stamped_or_refused_with_a_4xx() -> None:
    s = seal_signer(KeyAlgorithm.ECDSA_P256)
    pdf = make_pdf(2)
    rng = random.Random(911)
    for _ in range(40):
        data = bytearray(pdf)
        at = rng.randrange(len(data))
        data[at : at + rng.randint(1, 12)] = rng.randbytes(rng.randint(1, 12))
        try:
            stamp_pdf(bytes(data), s.signer, make_seal(), PLACE)
        except TrustError as exc:
            assert 400 <= exc.status < 500, exc


def test_sm2_in_pkcs7_content_types_verifies_through_pyhanko_with_the_sm2_plugin() -> None:
    s = seal_signer(KeyAlgorithm.SM2)
    options = StampOptions(chain=s.chain, sm2_profile=RFC5652)
    result = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, options)
    _, sig = _signature_dict(result.pdf)
    _, _, _, header, body, _ = parser.parse(bytes(sig["/Contents"]))
    content = load_content_info(header + body)
    assert content["content_type"].dotted == RFC5652.signed_data_type
    info = content["content"]["signer_infos"][0]
    assert info["signature_algorithm"]["algorithm"].dotted == oids.SM3_WITH_SM2

    (report,) = verify_pdf(result.pdf, anchors=[s.root])
    # pyHanko's path (its checks, not verify_cms's), with SM2SignatureValidator inside.
    assert report.report.check("format").message.startswith("CMS SignedData, sm3")
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks


@pytest.mark.openssl_cli
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.RSA_2048])
def test_openssl_cms_verifies_the_signature_over_the_byte_ranges(
    algorithm: KeyAlgorithm, tmp_path: Path
) -> None:
    """A second independent check: ``openssl cms -verify`` over the signed byte ranges."""
    s = seal_signer(algorithm)
    pdf = stamp_pdf(make_pdf(), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain)).pdf
    _, sig = _signature_dict(pdf)
    _, _, _, header, body, _ = parser.parse(bytes(sig["/Contents"]))
    a, b, c, d = (int(v) for v in sig["/ByteRange"])
    cms_file = write(tmp_path / "sig.der", header + body)
    content = write(tmp_path / "signed.bin", pdf[a : a + b] + pdf[c : c + d])
    root = write(tmp_path / "root.pem", pem.armor("CERTIFICATE", s.root.dump()))
    args: tuple[str | Path, ...] = ("cms", "-verify", "-binary", "-inform", "DER", "-in", cms_file)
    args += ("-content", content, "-CAfile", root, "-purpose", "any", "-out", tmp_path / "o")
    assert "Verification successful" in run_openssl(*args)
    write(tmp_path / "signed.bin", pdf[a : a + b] + bytes([pdf[c] ^ 1]) + pdf[c + 1 : c + d])
    rc, out = openssl_output(*args)
    assert rc != 0, out


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.SM2])
def test_pdf_with_a_cross_reference_stream_is_stamped(algorithm: KeyAlgorithm) -> None:
    """PDF 1.5+ files index their objects in an /XRef stream; pyHanko rewrites ours so."""
    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(make_pdf(2))))
    writer.stream_xrefs = True
    out = io.BytesIO()
    writer.write(out)
    assert b"/XRef" in out.getvalue()
    s = seal_signer(algorithm)
    result = stamp_pdf(out.getvalue(), s.signer, make_seal(), Placement(2, 30, 30))
    (report,) = verify_pdf(result.pdf, anchors=[s.root], intermediates=s.chain)
    assert report.report.indication is Indication.TOTAL_PASSED, report.report.checks


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.SM2])
def test_signing_time_comes_from_the_service_clock(algorithm: KeyAlgorithm) -> None:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    s = seal_signer(algorithm)
    result = stamp_pdf(
        make_pdf(), s.signer, make_seal(), PLACE, StampOptions(chain=s.chain), clock=FakeClock(when)
    )
    assert result.signing_time == when
    (report,) = verify_pdf(result.pdf, anchors=[s.root])
    assert report.claimed_signing_time == when
