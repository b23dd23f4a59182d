"""verify_ofd on ofdrw's and third-party samples (interop/README.md outcomes), on tampered
copies, and on packages whose signatures are malformed."""

from __future__ import annotations

import os
import time

import pytest

from seals.detect import SealVersion
from seals.documents.ofd_package import read_package
from seals.documents.ofd_verify import verify_ofd
from seals.documents.report import ReferenceStatus, SignatureReport
from seals.verify import Check as SealCheck
from seals.verify import CheckName as SealCheckName
from seals.verify import CheckStatus as SealCheckStatus
from seals.verify import SubIndication as SealSubIndication
from seals.verify import VerificationResult
from tests.ofd_support import (
    change_one_byte,
    ofdrw_user_certificate,
    rewrite,
    sample,
    seal_signer,
    two_documents,
)
from tests.seals_helpers import identity
from trust.errors import DocumentMalformed, DocumentXmlInvalid
from trust.validation.report import CheckStatus, Indication, SubIndication

SEAL_CHECKS = ("references", "data_hash", "signer_signature", "seal_maker_signature", "format")
SIGNATURE_XML = "Doc_0/Signs/Sign_0/Signature.xml"


def _status(report_signature: SignatureReport, name: str) -> CheckStatus:
    return report_signature.check(name).status


@pytest.mark.parametrize("name", ["v4signed.ofd", "signedFile.ofd", "allprotected.ofd"])
def test_valid_seal_samples(name: str) -> None:
    report = verify_ofd(sample(name))
    assert report.indication is Indication.TOTAL_PASSED
    (signature,) = report.signatures
    for check in SEAL_CHECKS:
        assert _status(signature, check) is CheckStatus.PASSED, check
    assert all(r.status is ReferenceStatus.MATCH for r in signature.references)
    assert signature.seal is not None and signature.seal.version == 4


def test_gomain_invoice_check_method_is_the_oid() -> None:
    report = verify_ofd(sample("v4signed.ofd"))
    (signature,) = report.signatures
    assert len(signature.references) == 13
    assert signature.seal is not None and signature.seal.es_id == "50011200000399"
    # Continue-signing mode: the signature list is the one file left open.
    assert report.unprotected_files == ("/Doc_0/Signs/Signatures.xml",)
    assert not signature.whole_protected


def test_allprotected_covers_everything() -> None:
    report = verify_ofd(sample("allprotected.ofd"))
    assert report.unprotected_files == ()
    assert report.signatures[0].whole_protected


def test_sesv4signdoc_signatures_valid_but_seal_expired_at_signing() -> None:
    # Made by ofdrw with a 2026 clock while its test seal was valid 2020-2022: the
    # cryptography is right, the seal was no longer valid when it was used.
    (signature,) = verify_ofd(sample("SESV4SignDoc.ofd")).signatures
    for check in SEAL_CHECKS:
        assert _status(signature, check) is CheckStatus.PASSED, check
    assert signature.check("seal_validity").sub_indication is SubIndication.SEAL_EXPIRED


def test_bare_sm2_signature_against_ofdrw_certificate() -> None:
    data = sample("DigitalSign.ofd")
    without = verify_ofd(data)
    assert without.indication is Indication.INDETERMINATE
    assert without.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND

    cert = ofdrw_user_certificate()
    report = verify_ofd(data, certificates=[cert])
    assert report.indication is Indication.TOTAL_PASSED
    (signature,) = report.signatures
    assert signature.type == "Sign" and signature.signer is not None
    assert "Test Certificate" in signature.signer.subject


def test_bare_signature_with_the_wrong_certificate_fails() -> None:
    from tests.seals_helpers import identity

    report = verify_ofd(sample("DigitalSign.ofd"), certificates=[identity("other").cert])
    assert report.signatures[0].check("signature").status is CheckStatus.FAILED


@pytest.mark.parametrize("name", ["v4signed.ofd", "allprotected.ofd"])
def test_one_changed_byte_in_any_referenced_file_is_named(name: str) -> None:
    data = sample(name)
    package = read_package(data)
    described = verify_ofd(data).signatures[0]
    for reference in described.references:
        file = reference.file.lstrip("/")
        tampered = rewrite(data, {file: change_one_byte(package.read(file))})
        (signature,) = verify_ofd(tampered).signatures
        check = signature.check("references")
        assert check.status is CheckStatus.FAILED and reference.file in check.message
        assert [r.file for r in signature.references if r.status is ReferenceStatus.MISMATCH] == [
            reference.file
        ]


def test_changed_signature_xml_breaks_the_data_hash() -> None:
    data = sample("v4signed.ofd")
    xml = read_package(data).read(SIGNATURE_XML)
    tampered = rewrite(data, {SIGNATURE_XML: xml.replace(b"90.00 8.00", b"91.00 8.00")})
    (signature,) = verify_ofd(tampered).signatures
    assert signature.check("data_hash").sub_indication is SubIndication.DATA_HASH_MISMATCH
    assert signature.check("references").status is CheckStatus.PASSED


def test_missing_referenced_file_is_reported() -> None:
    data = sample("v4signed.ofd")
    package = read_package(data)
    files = {n: package.read(n) for n in package.names if n != "Doc_0/Res/qr.png"}
    from seals.documents.ofd_package import OfdPackage

    (signature,) = verify_ofd(OfdPackage(files)).signatures
    missing = [r.file for r in signature.references if r.status is ReferenceStatus.MISSING]
    assert missing == ["/Doc_0/Res/qr.png"]


def test_injected_seal_verifier_decides_the_seal_checks() -> None:
    """The service passes its seal verifier (anchors, revocation, registry status); what
    it answers is what the report says, and it is given Signature.xml as the original."""
    data = sample("v4signed.ofd")
    seen: list[bytes] = []

    def expired(signature: bytes, original: bytes) -> VerificationResult:
        seen.append(original)
        status = SealCheck(
            SealCheckName.SEAL_STATUS,
            SealCheckStatus.FAILED,
            SealSubIndication.SEAL_EXPIRED,
            "expired in the registry",
        )
        return VerificationResult(SealVersion.V4, (status,))

    report = verify_ofd(data, seal_verifier=expired)
    assert seen == [read_package(data).read(SIGNATURE_XML)]
    assert report.signatures[0].check("seal_status").status is CheckStatus.FAILED
    assert report.sub_indication is SubIndication.SEAL_EXPIRED


def test_unsigned_document_has_no_signatures() -> None:
    from tests.ofd_support import make_ofd

    report = verify_ofd(make_ofd(2))
    assert report.signatures == ()
    assert report.sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND
    assert len(report.unprotected_files) == 5  # OFD.xml, Document, PublicRes, 2 pages


def test_missing_signature_xml_is_a_4xx() -> None:
    package = read_package(sample("v4signed.ofd"))
    files = {n: package.read(n) for n in package.names if n != SIGNATURE_XML}
    from seals.documents.ofd_package import OfdPackage

    with pytest.raises(DocumentMalformed, match="Signature.xml"):
        verify_ofd(OfdPackage(files))


@pytest.mark.parametrize(
    "content",
    [
        b"<ofd:Signature xmlns:ofd='http://www.ofdspec.org/2016'><unclosed>",
        b"<ofd:Signature xmlns:ofd='http://example.com/other'/>",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>",
    ],
)
def test_broken_signature_xml_is_a_4xx(content: bytes) -> None:
    with pytest.raises(DocumentXmlInvalid):
        verify_ofd(rewrite(sample("v4signed.ofd"), {SIGNATURE_XML: content}))


def test_garbage_signed_value_is_a_failed_format_check() -> None:
    tampered = rewrite(
        sample("v4signed.ofd"), {"Doc_0/Signs/Sign_0/SignedValue.dat": b"\x30\x03junk"}
    )
    (signature,) = verify_ofd(tampered).signatures
    assert signature.check("format").sub_indication is SubIndication.FORMAT_FAILURE


def test_many_references_to_one_large_file_hash_it_once() -> None:
    """10,000 References to a 4 MB file would be 40 GB of SM3 if each were hashed."""
    big = os.urandom(4 << 20)  # incompressible: no zip-bomb refusal
    refs = "".join(
        '<ofd:Reference FileRef="/Doc_0/big.bin"><ofd:CheckValue>AAAA</ofd:CheckValue>'
        "</ofd:Reference>"
        for _ in range(10_000)
    )
    xml_bytes = (
        '<ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016"><ofd:SignedInfo>'
        f'<ofd:References CheckMethod="SM3">{refs}</ofd:References></ofd:SignedInfo>'
        "<ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    data = rewrite(sample("v4signed.ofd"), {SIGNATURE_XML: xml_bytes, "Doc_0/big.bin": big})
    started = time.monotonic()
    (signature,) = verify_ofd(data).signatures
    assert time.monotonic() - started < 30.0  # hashed per Reference: minutes
    assert signature.check("references").status is CheckStatus.FAILED


def test_every_document_of_a_package_is_verified() -> None:
    """Two DocBody, each with its own signature list: every signature is reported with
    its document, each document gets a summary, and a change in the second document's
    page fails its signature only."""
    package = two_documents(seal_signer(identity("maker"), identity("signer")))
    report = verify_ofd(package)
    assert [(s.document, s.id) for s in report.signatures] == [(0, "1"), (1, "1")]
    assert report.indication is Indication.TOTAL_PASSED, report
    assert [(d.index, d.location, d.signatures, d.indication) for d in report.documents] == [
        (0, "/Doc_0/Document.xml", 1, Indication.TOTAL_PASSED),
        (1, "/Doc_1/Document.xml", 1, Indication.TOTAL_PASSED),
    ]
    assert report.unprotected_files == (
        "/Doc_0/Signs/Signatures.xml",
        "/Doc_1/Signs/Signatures.xml",
    )

    page = "Doc_1/Pages/Page_1/Content.xml"
    changed = verify_ofd(
        rewrite(package, {page: change_one_byte(read_package(package).read(page))})
    )
    first, second = changed.signatures
    assert first.indication is Indication.TOTAL_PASSED
    assert second.check("references").status is CheckStatus.FAILED
    assert f"/{page} (mismatch)" in (second.check("references").message or "")
    assert [d.indication for d in changed.documents] == [
        Indication.TOTAL_PASSED,
        Indication.TOTAL_FAILED,
    ]
    assert changed.indication is Indication.TOTAL_FAILED


def test_a_document_without_signatures_is_reported_as_such() -> None:
    package = read_package(two_documents(seal_signer(identity("maker"), identity("signer"))))
    ofd = package.read("OFD.xml")
    unsigned = ofd.replace(b"<ofd:Signatures>/Doc_1/Signs/Signatures.xml</ofd:Signatures>", b"")
    assert unsigned != ofd
    report = verify_ofd(package.with_files({"OFD.xml": unsigned}))
    assert len(report.signatures) == 1
    (_, second) = report.documents
    assert second.signatures == 0
    assert second.sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND
