"""stamp_ofd / sign_ofd: what they write verifies here and with the pure-Python SM2/SM3
backend, looks like the third-party samples, and respects the signing modes."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import pem, x509
from gmssl import sm3 as gm_sm3
from lxml import etree

from keystore.model import Actor
from seals.documents import ofd_xml as xml
from seals.documents.ofd_package import OfdPackage, read_package
from seals.documents.ofd_sign import Placement, Rect, StampMode, sign_ofd, stamp_ofd
from seals.documents.ofd_structure import signature_file, signature_list
from seals.documents.ofd_verify import verify_ofd
from seals.documents.report import ReferenceStatus
from seals.parse import parse_signature
from tests.ca_support import DISTID, run_openssl, write
from tests.ofd_support import change_one_byte, make_ofd, rewrite, sample, seal_signer
from tests.pdf_support import tsa_function
from tests.seals_helpers import NOW, identity, seal_env
from tests.tsa_support import tsa_chain
from timestamp.checker import TokenChecker
from trust.clock import FakeClock
from trust.cms import KeySigner, load_content_info
from trust.errors import DocumentPageNotFound, DocumentProtected, ValidationFailed
from trust.keys import KeyAlgorithm
from trust.sm2.select import get_backend
from trust.validation.report import CheckStatus, Indication, SubIndication

MAKER, SIGNER = identity("seal maker"), identity("seal signer")
CLOCK = FakeClock(NOW)
HERE = Placement(page=1, rect=Rect(100, 200, 40, 40))


def _stamp(package: bytes, **options: object) -> bytes:
    kwargs: dict[str, object] = {"placement": HERE, "clock": CLOCK, **options}
    return stamp_ofd(package, seal_signature=seal_signer(MAKER, SIGNER), **kwargs)  # type: ignore[arg-type]


def _children(element: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in element]


def test_stamped_document_verifies() -> None:
    stamped = _stamp(make_ofd(3))
    report = verify_ofd(stamped)
    assert report.indication is Indication.TOTAL_PASSED
    (signature,) = report.signatures
    assert signature.type == "Seal" and signature.id == "1"
    assert len(signature.references) == 6  # OFD.xml, Document, PublicRes, 3 pages
    assert report.unprotected_files == ("/Doc_0/Signs/Signatures.xml",)
    assert signature.signing_time == NOW.strftime("%Y-%m-%d %H:%M:%S")


def test_independent_backend_agrees() -> None:
    """gmssl's SM3 recomputes every CheckValue and dataHash; its SM2 verifies both signatures."""
    stamped = _stamp(make_ofd(2))
    package = read_package(stamped)
    described = signature_file(package, "Doc_0/Signs/Sign_0/Signature.xml")
    for ref in described.references:
        digest = gm_sm3.sm3_hash(list(package.read(ref.name)))
        assert bytes.fromhex(digest) == ref.check_value
    parsed = parse_signature(package.read(described.signed_value))
    original = package.read(described.location)
    assert bytes.fromhex(gm_sm3.sm3_hash(list(original))) == parsed.data_hash
    report = verify_ofd(stamped, sm2_backend=get_backend("pure"))
    assert report.indication is Indication.TOTAL_PASSED


def test_structure_matches_the_third_party_sample() -> None:
    ours = read_package(_stamp(make_ofd(1)))
    theirs = read_package(sample("v4signed.ofd"))
    signs = "Doc_0/Signs/"
    assert {n for n in ours.names if n.startswith(signs)} == {
        n for n in theirs.names if n.startswith(signs)
    }
    for package in (ours, theirs):
        root = xml.parse(package.read("OFD.xml"), "OFD.xml", "OFD")
        body = xml.child(root, "DocBody")
        assert body is not None
        assert xml.text(xml.child(body, "Signatures")).lstrip("/") == "Doc_0/Signs/Signatures.xml"

    def shape(package: OfdPackage, name: str, tag: str) -> tuple[object, ...]:
        root = xml.parse(package.read(name), name, tag)
        info = xml.child(root, "SignedInfo")
        found = []
        for element in root.iter():
            if isinstance(element.tag, str):
                assert etree.QName(element).namespace == xml.NS
        if info is None:
            return (_children(root),)
        for tag in ("Provider", "StampAnnot"):
            element = xml.child(info, tag)
            assert element is not None
            found.append(sorted(k for k in element.attrib if k != "Clip"))
        refs = xml.child(info, "References")
        assert refs is not None
        ref = xml.child(refs, "Reference")
        assert ref is not None
        return (_children(root), _children(info), sorted(ref.attrib), _children(ref), *found)

    for name, tag in (
        ("Doc_0/Signs/Signatures.xml", "Signatures"),
        ("Doc_0/Signs/Sign_0/Signature.xml", "Signature"),
    ):
        assert shape(ours, name, tag) == shape(theirs, name, tag), name
    ours_sig = parse_signature(ours.read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    theirs_sig = parse_signature(theirs.read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    assert ours_sig.version == theirs_sig.version
    assert ours_sig.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"


def test_continue_mode_allows_more_signatures() -> None:
    once = _stamp(make_ofd(2))
    twice = _stamp(once, placement=Placement(page=2, rect=Rect(10, 10, 30, 30)))
    report = verify_ofd(twice)
    assert report.indication is Indication.TOTAL_PASSED
    first, second = report.signatures
    assert (first.id, second.id) == ("1", "3")  # 2 went to the first StampAnnot
    # The second protects the first signature's files too.
    assert "/Doc_0/Signs/Sign_0/SignedValue.dat" in {r.file for r in second.references}
    lst = signature_list(read_package(twice), "Doc_0/Signs/Signatures.xml")
    assert lst.max_sign_id == "4"
    assert [e.location for e in lst.entries] == [
        "Doc_0/Signs/Sign_0/Signature.xml",
        "Doc_0/Signs/Sign_1/Signature.xml",
    ]


def test_third_party_invoice_can_be_countersigned() -> None:
    stamped = _stamp(sample("v4signed.ofd"))
    report = verify_ofd(stamped)
    assert [s.indication for s in report.signatures] == [Indication.TOTAL_PASSED] * 2


def test_whole_mode_protects_everything_and_refuses_more() -> None:
    whole = _stamp(make_ofd(1), mode=StampMode.WHOLE)
    report = verify_ofd(whole)
    assert report.indication is Indication.TOTAL_PASSED
    assert report.unprotected_files == ()
    assert report.signatures[0].whole_protected
    with pytest.raises(DocumentProtected):
        _stamp(whole)


def test_stamping_allprotected_sample_is_refused() -> None:
    with pytest.raises(DocumentProtected, match="001"):
        _stamp(sample("allprotected.ofd"))


def test_signature_smuggled_after_whole_protection_is_flagged() -> None:
    whole = _stamp(make_ofd(1), mode=StampMode.WHOLE)
    package = read_package(whole)
    # What a tool that ignores the mode would do: add Sign_1 and list it.
    listed = package.read("Doc_0/Signs/Signatures.xml").replace(
        b"</ofd:Signatures>",
        b'<ofd:Signature ID="9" Type="Seal" BaseLoc="/Doc_0/Signs/Sign_1/Signature.xml"/>'
        b"</ofd:Signatures>",
    )
    copied = {
        "Doc_0/Signs/Sign_1/Signature.xml": package.read("Doc_0/Signs/Sign_0/Signature.xml"),
        "Doc_0/Signs/Sign_1/SignedValue.dat": package.read("Doc_0/Signs/Sign_0/SignedValue.dat"),
        "Doc_0/Signs/Signatures.xml": listed,
    }
    report = verify_ofd(rewrite(whole, copied))
    first, second = report.signatures
    assert first.check("references").status is CheckStatus.FAILED
    assert second.check("protection").status is CheckStatus.FAILED
    assert [w.code for w in report.warnings] == ["ofd.signed_after_whole_protection"]


def test_riding_seal_one_annotation_per_page() -> None:
    stamped = _stamp(
        make_ofd(4), placement=Placement(page=2, rect=Rect(0, 100, 40, 40), last_page=4)
    )
    package = read_package(stamped)
    described = signature_file(package, "Doc_0/Signs/Sign_0/Signature.xml")
    assert [a.page_ref for a in described.stamp_annots] == ["2", "3", "4"]
    root = xml.parse(package.read(described.location), described.location, "Signature")
    clips = [a.get("Clip") for a in root.iter(xml.q("StampAnnot"))]
    # A 40 mm seal in three slices at the right edge of a 210 mm page.
    assert [a.boundary.split()[0] for a in described.stamp_annots] == ["196.667", "183.333", "170"]
    assert clips == ["0 0 13.3333 40", "13.3333 0 13.3333 40", "26.6667 0 13.3333 40"]
    assert verify_ofd(stamped).indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize(
    "placement",
    [Placement(0, HERE.rect), Placement(2, HERE.rect), Placement(1, HERE.rect, last_page=3)],
)
def test_page_outside_the_document(placement: Placement) -> None:
    with pytest.raises(DocumentPageNotFound):
        _stamp(make_ofd(1), placement=placement)


def test_tampering_after_stamping_names_the_file() -> None:
    stamped = _stamp(make_ofd(2))
    page = "Doc_0/Pages/Page_1/Content.xml"
    tampered = rewrite(stamped, {page: change_one_byte(read_package(stamped).read(page))})
    (signature,) = verify_ofd(tampered).signatures
    bad = [r.file for r in signature.references if r.status is not ReferenceStatus.MATCH]
    assert bad == ["/" + page]


def test_callable_with_the_wrong_data_hash_is_refused() -> None:
    honest = seal_signer(MAKER, SIGNER)

    def wrong(data_hash: bytes, location: str) -> bytes:
        return honest(bytes(32), location)

    with pytest.raises(ValidationFailed, match="dataHash"):
        stamp_ofd(make_ofd(1), seal_signature=wrong, placement=HERE, clock=CLOCK)


def test_sign_type_with_gmt0010_signed_data() -> None:
    signer = KeySigner(SIGNER.key, x509.Certificate.load(SIGNER.cert))
    signed = sign_ofd(make_ofd(1), signer=signer, clock=CLOCK)
    report = verify_ofd(signed, anchors=[SIGNER.cert], clock=CLOCK)
    assert report.indication is Indication.TOTAL_PASSED
    (signature,) = report.signatures
    assert signature.type == "Sign"
    for name in ("references", "format", "message_digest", "signature", "certificate_chain"):
        assert signature.check(name).status is CheckStatus.PASSED, name
    # Without the anchor the chain is open, and a changed Signature.xml breaks the digest.
    assert verify_ofd(signed, clock=CLOCK).indication is not Indication.TOTAL_PASSED
    location = "Doc_0/Signs/Sign_0/Signature.xml"
    xml_bytes = read_package(signed).read(location)
    tampered = rewrite(signed, {location: change_one_byte(xml_bytes)})
    (broken,) = verify_ofd(tampered, anchors=[SIGNER.cert], clock=CLOCK).signatures
    assert broken.indication is Indication.TOTAL_FAILED
    assert signature.signer is not None and "seal signer" in signature.signer.subject
    package = read_package(signed)
    described = signature_file(package, "Doc_0/Signs/Sign_0/Signature.xml")
    assert described.stamp_annots == ()
    info = load_content_info(package.read(described.signed_value))
    assert info["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"  # GM/T 0010 signedData


def test_openssl_agrees(tmp_path: Path) -> None:
    """The openssl command line recomputes every CheckValue and the dataHash (dgst -sm3)
    and verifies the signer's SM2 signature over DER(TBS_Sign) (pkeyutl, Z, default ID)."""
    package = read_package(_stamp(make_ofd(2)))
    described = signature_file(package, "Doc_0/Signs/Sign_0/Signature.xml")

    for ref in described.references:
        digest = run_openssl("dgst", "-sm3", "-r", write(tmp_path / "f", package.read(ref.name)))
        assert bytes.fromhex(digest.split()[0]) == ref.check_value, ref.name
    parsed = parse_signature(package.read(described.signed_value))
    digest = run_openssl(
        "dgst", "-sm3", "-r", write(tmp_path / "s.xml", package.read(described.location))
    )
    assert bytes.fromhex(digest.split()[0]) == parsed.data_hash
    key = x509.Certificate.load(parsed.signer_cert).public_key.dump()
    public = write(tmp_path / "k.pem", pem.armor("PUBLIC KEY", key))
    out = run_openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", public,
        "-rawin", "-digest", "sm3", "-pkeyopt", DISTID,
        "-in", write(tmp_path / "tbs", parsed.signer_signed_bytes),
        "-sigfile", write(tmp_path / "sig", parsed.signature),
    )  # fmt: skip
    assert "Signature Verified Successfully" in out


def test_sign_type_through_the_signer_registry(sqlite_url: str) -> None:
    """Production's CmsSigner: the signer registry's key-store handle (the key never
    leaves the key store, one key.sign audit record); verified up to the service's root."""
    env = seal_env(sqlite_url)
    try:
        signer = env.add_signer("notary")
        cms_signer = env.signers.cms_signer(signer.signer_id, Actor("clerk"))
        chain = env.signers.chain(signer.signer_id)
        signed = sign_ofd(make_ofd(1), signer=cms_signer, chain=chain, clock=env.clock)
        report = verify_ofd(signed, anchors=[env.root_certificate], clock=env.clock)
        (signature,) = report.signatures
        for name in ("references", "message_digest", "signature", "certificate_chain"):
            assert signature.check(name).status is CheckStatus.PASSED, signature.check(name)
        last = env.audit.tail(1)[-1]
        assert (last.action, last.actor) == ("key.sign", "clerk")
    finally:
        env.close()


def test_sign_type_with_a_signature_timestamp(sqlite_url: str) -> None:
    """The service's TSA timestamps the SignerInfo's signature value (SM3, SM2 unit); the
    token rides as an unsigned attribute and the verifier checks it against the value."""
    signer = KeySigner(SIGNER.key, x509.Certificate.load(SIGNER.cert))
    signed = sign_ofd(make_ofd(1), signer=signer, timestamp=tsa_function(sqlite_url, "sm2"))
    tsa_root = tsa_chain(KeyAlgorithm.SM2)[0]
    anchors = [SIGNER.cert, tsa_root]
    report = verify_ofd(signed, anchors=anchors, timestamp_checker=TokenChecker())
    (signature,) = report.signatures
    assert signature.check("timestamp").status is CheckStatus.PASSED, signature.check("timestamp")
    # Without the TSA's root the token is no proof of existence.
    alone = verify_ofd(signed, anchors=[SIGNER.cert], timestamp_checker=TokenChecker())
    assert alone.signatures[0].check("timestamp").sub_indication is SubIndication.NO_POE
