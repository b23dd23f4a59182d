"""Documents API: stamping an OFD through the seal service over HTTP, verifying uploads,
and hostile or malformed uploads answered with problem+json 4xx within bounded time."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from api.routers.documents import _REPORT_EXAMPLE
from seals.documents.ofd_package import read_package
from seals.documents.ofd_verify import verify_ofd
from seals.documents.report import DocumentReport
from seals.parse import parse_signature
from tests.api_support import ApiEnv, make_env
from tests.ofd_support import make_ofd, raw_zip, rewrite, sample, service_seal_env
from tests.pdf_support import crafted_pdf, make_pdf, seal_png
from tests.seals_helpers import SealEnv, StampingSigner
from tests.test_api_platform import assert_problem
from tests.tsa_support import provision_defaults
from trust.auth import Grant, Role
from trust.validation.report import CheckStatus, Indication

STAMP = "/v1/documents/stamp"
VERIFY = "/v1/documents/verify"
SIGNATURE_XML = "Doc_0/Signs/Sign_0/Signature.xml"


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    return make_env(tmp_path)


def _seals(env: ApiEnv) -> SealEnv:
    return service_seal_env(env.app.state.services, env.clock)


def _stamp(
    env: ApiEnv, token_grant: Grant, esid: str, signer: StampingSigner, data: bytes, **fields: str
) -> httpx.Response:
    form = {"seal_id": esid, "signer": signer.signer_id, "x": "20", "y": "30", **fields}
    return env.client.post(
        STAMP,
        headers=env.headers(token_grant),
        data=form,
        files={"file": ("invoice.bin", data, "application/octet-stream")},
    )


def _verify(env: ApiEnv, data: bytes, name: str = "upload.bin") -> httpx.Response:
    return env.client.post(VERIFY, files={"file": (name, data, "application/octet-stream")})


def test_stamp_then_verify_over_http(env: ApiEnv) -> None:
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    r = _stamp(env, grant, esid, signer, make_ofd(3), page="2")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/ofd"
    stamped: bytes = r.content

    report = verify_ofd(stamped)
    (signature,) = report.signatures
    assert signature.seal is not None and signature.seal.es_id == esid
    for check in ("references", "data_hash", "signer_signature", "seal_maker_signature"):
        assert signature.check(check).status is CheckStatus.PASSED, check
    described = read_package(stamped).read(SIGNATURE_XML)
    assert b'PageRef="2"' in described and b'Boundary="20 30 40 40"' in described

    body = _verify(env, stamped).json()
    assert body["format"] == "ofd"
    assert body["signatures"][0]["seal"]["es_id"] == esid
    assert body["indication"] == Indication.TOTAL_PASSED.value, body
    # The service's seal verifier: chains to its own CA, registry status.
    statuses = {c["name"]: c["status"] for c in body["signatures"][0]["checks"]}
    for check in ("seal_maker_certificate", "signer_certificate", "seal_status"):
        assert statuses[check] == "passed", (check, statuses)

    seals.service.revoke(esid, actor="officer-b", reason="key compromise")
    revoked = _verify(env, stamped).json()
    checks = {c["name"]: c for c in revoked["signatures"][0]["checks"]}
    assert checks["seal_status"]["status"] == "failed", checks["seal_status"]
    assert revoked["indication"] == Indication.TOTAL_FAILED.value

    audit = env.app.state.services.audit
    actions = [(e.action, e.outcome) for e in audit.tail(50)]
    assert ("seal.stamp", "success") in actions and ("document.stamp", "success") in actions


def test_stamp_needs_a_grant_on_that_seal(env: ApiEnv) -> None:
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    other = Grant(Role.signer, "seal", frozenset({"some-other-seal"}))
    assert_problem(_stamp(env, other, esid, signer, make_ofd()), 403, "forbidden")
    verifier = Grant(Role.verifier)
    assert_problem(_stamp(env, verifier, esid, signer, make_ofd()), 403, "forbidden")


def test_stamping_a_whole_protected_document_is_a_conflict(env: ApiEnv) -> None:
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    assert_problem(
        _stamp(env, grant, esid, signer, sample("allprotected.ofd")), 409, "document_protected"
    )
    whole = _stamp(env, grant, esid, signer, make_ofd(), mode="whole")
    assert whole.status_code == 200
    again = _stamp(env, grant, esid, signer, whole.content)
    assert_problem(again, 409, "document_protected")
    assert_problem(
        _stamp(env, grant, esid, signer, make_ofd(1), page="5"), 422, "document_page_not_found"
    )


@pytest.mark.parametrize("name", ["v4signed.ofd", "signedFile.ofd", "allprotected.ofd"])
def test_verify_samples(env: ApiEnv, name: str) -> None:
    r = _verify(env, sample(name), name="renamed.pdf")  # the name says PDF: ignored
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indication"] == "TOTAL_PASSED"
    assert body["signatures"][0]["seal"]["version"] == 4


def _bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("OFD.xml", b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>')
        archive.writestr("Doc_0/bomb.xml", bytes(16 << 20))
    return out.getvalue()


def _without(data: bytes, name: str) -> bytes:
    package = read_package(data)
    return raw_zip([(n, package.read(n)) for n in package.names if n != name])


MALFORMED = {
    "zip_bomb": (_bomb, 400, "document_archive_unsafe"),
    "path_traversal": (
        lambda: raw_zip([("OFD.xml", b"<x/>"), ("../../etc/cron.d/evil", b"x")]),
        400,
        "document_archive_unsafe",
    ),
    "missing_signature_xml": (
        lambda: _without(sample("v4signed.ofd"), SIGNATURE_XML),
        400,
        "document_malformed",
    ),
    "broken_xml": (
        lambda: rewrite(sample("v4signed.ofd"), {SIGNATURE_XML: b"<ofd:Signature"}),
        400,
        "document_xml_invalid",
    ),
    "wrong_namespace": (
        lambda: rewrite(sample("v4signed.ofd"), {"OFD.xml": b'<ofd:OFD xmlns:ofd="urn:not-ofd"/>'}),
        400,
        "document_xml_invalid",
    ),
    "entity_expansion": (
        lambda: rewrite(
            sample("v4signed.ofd"),
            {"OFD.xml": b'<!DOCTYPE a [<!ENTITY e "xxxxxxxx">]><a>&e;&e;</a>'},
        ),
        400,
        "document_xml_invalid",
    ),
    "truncated_zip": (lambda: sample("v4signed.ofd")[:-100], 415, "unsupported_document_format"),
    "not_a_document": (lambda: b"hello world", 415, "unsupported_document_format"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_uploads(env: ApiEnv, case: str) -> None:
    make, status, code = MALFORMED[case]
    data = make()
    started = time.monotonic()
    assert_problem(_verify(env, data), status, code)
    assert time.monotonic() - started < 3.0


def test_upload_limit_is_the_document_setting(tmp_path: Path) -> None:
    env = make_env(tmp_path, document_max_bytes=64 * 1024, max_body_bytes=4096)
    assert _verify(env, sample("v4signed.ofd")).status_code == 200
    assert_problem(_verify(env, bytes(100 * 1024)), 413, "payload_too_large")
    # Other routes keep the general limit.
    r = env.client.post(
        "/v1/verify/signature", headers={"content-type": "application/json"}, content=b"x" * 8192
    )
    assert_problem(r, 413, "payload_too_large")


def test_verify_is_not_public_when_public_verify_is_off(tmp_path: Path) -> None:
    env = make_env(tmp_path, public_verify=False)
    assert_problem(_verify(env, sample("v4signed.ofd")), 401, "unauthenticated")
    r = env.client.post(
        VERIFY,
        headers=env.headers(Grant(Role.verifier)),
        files={"file": ("a", sample("v4signed.ofd"))},
    )
    assert r.status_code == 200


def test_pdf_stamp_then_verify_over_http(env: ApiEnv) -> None:
    """A PDF goes to the PDF engineer's functions: a GM/T 0010 SM2 PAdES signature by the
    seal's signer, the seal picture on the page; verification names the registry's seal."""
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer, picture=seal_png())
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    r = _stamp(env, grant, esid, signer, make_pdf(2), page="2")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    body = _verify(env, r.content, name="renamed.ofd").json()
    assert body["format"] == "pdf", body
    (signature,) = body["signatures"]
    assert signature["seal"]["es_id"] == esid
    statuses = {c["name"]: c["status"] for c in signature["checks"]}
    assert statuses["signature"] == "passed" and statuses["message_digest"] == "passed"
    assert_problem(
        _stamp(env, grant, esid, signer, make_pdf(1), mode="whole"), 422, "validation_failed"
    )
    audit = env.app.state.services.audit
    assert ("document.stamp", "success") in [(e.action, e.outcome) for e in audit.tail(50)]


def test_malformed_pdf_is_a_4xx(env: ApiEnv) -> None:
    r = _verify(env, b"%PDF-1.7\n" + bytes(300))
    assert r.status_code == 400 and r.json()["code"].startswith("pdf_")


def test_token_narrowed_to_signers_stamps_only_as_those(env: ApiEnv) -> None:
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    on_seal = Grant(Role.signer, "seal", frozenset({esid}))
    other_signer = Grant(Role.signer, "signer", frozenset({"sgn_000000000000000000000000"}))
    token = env.token(on_seal, other_signer)
    form = {"seal_id": esid, "signer": signer.signer_id, "x": "1", "y": "1"}
    r = env.client.post(
        STAMP,
        headers={"Authorization": f"Bearer {token}"},
        data=form,
        files={"file": ("a", make_ofd())},
    )
    assert_problem(r, 403, "forbidden")
    allowed = env.token(on_seal, Grant(Role.signer, "signer", frozenset({signer.signer_id})))
    r = env.client.post(
        STAMP,
        headers={"Authorization": f"Bearer {allowed}"},
        data=form,
        files={"file": ("a", make_ofd())},
    )
    assert r.status_code == 200, r.text


def test_timestamped_ofd_stamp(env: ApiEnv) -> None:
    """timestamp=true: the seal service's TSA puts a token over the signer's signature in
    the SES_Signature, and the service's verifier checks it."""
    services = env.app.state.services
    provision_defaults(services)  # the default CAs and TSA units, as trustctl init makes
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    r = _stamp(env, grant, esid, signer, make_ofd(1), timestamp="true")
    assert r.status_code == 200, r.text
    value = read_package(r.content).read("Doc_0/Signs/Sign_0/SignedValue.dat")
    assert parse_signature(value).timestamp is not None
    body = _verify(env, r.content).json()
    checks = {c["name"]: c for c in body["signatures"][0]["checks"]}
    assert checks["signature_timestamp"]["status"] == "passed", checks["signature_timestamp"]


def test_malformed_uploads_to_stamp_change_nothing(env: ApiEnv) -> None:
    """The same hostile packages sent to the stamp route: 4xx, and no stamp made (the seal
    service's audit has no seal.stamp), only the refused document.stamp records."""
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    audit = env.app.state.services.audit
    before = audit.tail(1)[-1].seq
    for case, (make, status, code) in sorted(MALFORMED.items()):
        data = make()
        started = time.monotonic()
        assert_problem(_stamp(env, grant, esid, signer, data), status, code)
        assert time.monotonic() - started < 3.0, case
    after = [e for e in audit.tail(100) if e.seq > before and e.action != "token.create"]
    assert {(e.action, e.outcome) for e in after} == {("document.stamp", "failure")}
    assert len(after) == len(MALFORMED)


def test_crafted_pdf_to_stamp_is_refused_before_any_signature(tmp_path: Path) -> None:
    """pyHanko reads the input in a bounded worker: a crafted PDF is a 422 within the bound
    and the key store makes no signature (no key.sign, no document.stamp success)."""
    env = make_env(tmp_path, document_pdf_seconds=1.0)
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer, picture=seal_png())
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    assert _stamp(env, grant, esid, signer, make_pdf(1)).status_code == 200  # warm workers
    audit = env.app.state.services.audit
    before = audit.tail(1)[-1].seq
    started = time.monotonic()
    r = _stamp(env, grant, esid, signer, crafted_pdf(1 << 20))
    assert_problem(r, 422, "document_too_complex")
    assert time.monotonic() - started < 2.5
    after = [(e.action, e.outcome) for e in audit.tail(50) if e.seq > before]
    assert ("document.stamp", "failure") in after and ("key.sign", "success") not in after


def test_ofd_limits_are_settings(tmp_path: Path) -> None:
    env = make_env(tmp_path, ofd_max_entries=10)
    assert_problem(_verify(env, sample("v4signed.ofd")), 400, "document_archive_unsafe")
    env = make_env(tmp_path / "xml", ofd_max_xml_bytes=1024)  # its Signature.xml is larger
    r = _verify(env, sample("v4signed.ofd"))
    assert_problem(r, 400, "document_archive_unsafe")
    assert "XML file" in r.json()["detail"]


SIGN = "/v1/documents/sign"


def _sign(env: ApiEnv, grant: Grant, signer_id: str, data: bytes, **fields: str) -> httpx.Response:
    return env.client.post(
        SIGN,
        headers=env.headers(grant),
        data={"signer": signer_id, **fields},
        files={"file": ("contract.bin", data, "application/octet-stream")},
    )


def test_sign_type_ofd_signature_over_http(env: ApiEnv) -> None:
    """POST /v1/documents/sign: a Sign-type signature (GM/T 0010 SignedData over
    SM3(Signature.xml)) by the signer's key-store key; the service verifies it."""
    services = env.app.state.services
    provision_defaults(services)  # the TSA units, for timestamp=true
    signer = _seals(env).add_signer("clerk")
    grant = Grant(Role.signer, "signer", frozenset({signer.signer_id}))
    r = _sign(env, grant, signer.signer_id, make_ofd(2), timestamp="true")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/ofd"
    body = _verify(env, r.content).json()
    (signature,) = body["signatures"]
    assert signature["type"] == "Sign" and signature["seal"] is None
    assert body["indication"] == Indication.TOTAL_PASSED.value, body
    checks = {c["name"]: c["status"] for c in signature["checks"]}
    assert checks["references"] == "passed", checks
    value = read_package(r.content).read("Doc_0/Signs/Sign_0/SignedValue.dat")
    assert value[:2] == b"\x30\x82"  # DER SignedData, not an SES_Signature
    assert read_package(r.content).read(SIGNATURE_XML).count(b"StampAnnot") == 0

    # whole protection closes the document, to seals and Sign signatures alike
    whole = _sign(env, grant, signer.signer_id, r.content, mode="whole")
    assert whole.status_code == 200, whole.text
    assert_problem(_sign(env, grant, signer.signer_id, whole.content), 409, "document_protected")

    audit = [(e.action, e.outcome) for e in services.audit.tail(50)]
    assert ("document.sign", "success") in audit and ("key.sign", "success") in audit
    assert ("document.sign", "failure") in audit


def test_sign_refusals(env: ApiEnv) -> None:
    signer = _seals(env).add_signer("clerk")
    other = Grant(Role.signer, "signer", frozenset({"sgn_000000000000000000000000"}))
    assert_problem(_sign(env, other, signer.signer_id, make_ofd()), 403, "forbidden")
    seal_only = Grant(Role.signer, "seal", frozenset({"11010000000001"}))
    assert_problem(_sign(env, seal_only, signer.signer_id, make_ofd()), 403, "forbidden")
    assert_problem(_sign(env, Grant(Role.verifier), signer.signer_id, make_ofd()), 403, "forbidden")
    r = env.client.post(SIGN, data={"signer": signer.signer_id}, files={"file": ("a", make_ofd())})
    assert_problem(r, 401, "unauthenticated")

    grant = Grant(Role.signer, "signer", frozenset({signer.signer_id}))
    assert_problem(
        _sign(env, grant, signer.signer_id, make_pdf(1)), 415, "unsupported_document_format"
    )
    assert_problem(
        _sign(env, grant, signer.signer_id, b"PK\x03\x04junk"), 415, "unsupported_document_format"
    )
    unknown = Grant(Role.signer)
    assert_problem(
        _sign(env, unknown, "sgn_000000000000000000000000", make_ofd()), 404, "signer_not_found"
    )
    # No TSA unit in this environment: refused before the key store signs anything.
    audit = env.app.state.services.audit
    before = audit.tail(1)[-1].seq
    r = _sign(env, grant, signer.signer_id, make_ofd(), timestamp="true")
    assert_problem(r, 409, "tsa_unit_unavailable")
    assert "key.sign" not in [e.action for e in audit.tail(20) if e.seq > before]


def test_svg_seal_stamps_ofd_and_pdf(env: ApiEnv) -> None:
    """A seal with an SVG picture stamps OFD packages (the SVG goes into the seal as it is)
    and PDF files (drawn as vectors, ``pdf_svg``); an SVG that refers to a file is refused
    for PDF before any signature."""
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle r="20"/></svg>'
    esid = seals.active_seal(signer, picture=svg, picture_type="SVG")
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    assert _stamp(env, grant, esid, signer, make_ofd(1)).status_code == 200
    r = _stamp(env, grant, esid, signer, make_pdf(1))
    assert r.status_code == 200, r.text
    (signature,) = _verify(env, r.content).json()["signatures"]
    assert signature["seal"]["es_id"] == esid

    linked = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b'<image width="40" height="40" href="file:///etc/passwd"/></svg>'
    )
    esid = seals.active_seal(signer, picture=linked, picture_type="SVG")
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    audit = env.app.state.services.audit
    before = audit.tail(1)[-1].seq
    r = _stamp(env, grant, esid, signer, make_pdf(1))
    assert_problem(r, 422, "seal_image_unsupported")
    after = [(e.action, e.outcome) for e in audit.tail(20) if e.seq > before]
    assert [a for a in after if a[0] != "token.create"] == [("document.stamp", "failure")]


def test_pdf_stamp_without_a_tsa_unit_signs_nothing(env: ApiEnv) -> None:
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer, picture=seal_png())
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    audit = env.app.state.services.audit
    before = audit.tail(1)[-1].seq
    r = _stamp(env, grant, esid, signer, make_pdf(1), timestamp="true")
    assert_problem(r, 409, "tsa_unit_unavailable")
    assert "key.sign" not in [e.action for e in audit.tail(20) if e.seq > before]


def test_the_openapi_report_example_is_a_valid_report() -> None:
    report = DocumentReport.model_validate(_REPORT_EXAMPLE)
    assert report.documents and report.signatures[0].document == 0


def test_pdf_stamp_b_lt_embeds_the_service_crls(env: ApiEnv) -> None:
    """ltv=true (with timestamp): the signer's chain, the service roots and the service
    CAs' current CRLs go into the PDF's DSS; the stamp still verifies."""
    services = env.app.state.services
    provision_defaults(services)
    seals = _seals(env)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer, picture=seal_png())
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    assert_problem(
        _stamp(env, grant, esid, signer, make_pdf(1), ltv="true"), 422, "validation_failed"
    )
    assert_problem(
        _stamp(env, grant, esid, signer, make_ofd(1), ltv="true", timestamp="true"),
        422,
        "validation_failed",
    )
    r = _stamp(env, grant, esid, signer, make_pdf(1), ltv="true", timestamp="true")
    assert r.status_code == 200, r.text
    dss = PdfFileReader(io.BytesIO(r.content)).root["/DSS"]
    embedded = {bytes(c.get_object().data) for c in dss["/CRLs"]}
    authority = services.ca()
    expected = {authority.current_crl(ca.id) for ca in authority.list_cas()}
    assert expected and expected <= embedded
    body = _verify(env, r.content).json()
    (signature,) = body["signatures"]
    statuses = {c["name"]: c["status"] for c in signature["checks"]}
    assert statuses["signature"] == "passed" and statuses["timestamp"] == "passed", statuses
