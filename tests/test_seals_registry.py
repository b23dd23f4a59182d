"""The seal registry and lifecycle (GB/T 33481) over a real key store and CA: approval
rules, making, status history and the status at any instant under a frozen clock,
expiry, and every refusal of stamping; seals and stamps the service made read by an
independent DER walk and verified with the pure-Python gmssl backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem, x509

from keystore.model import Actor
from seals.registry import SealStatus
from seals.service import ApplyRequest, StampRequest
from tests.ca_support import DISTID, run_openssl, write
from tests.certs_helper import make_chain
from tests.seals_helpers import PNG, SealEnv, StampingSigner, seal_env
from tests.test_seals_build import SM3_WITH_SM2_DER, der_integer, read_all, read_one, tags
from trust.errors import (
    Conflict,
    InvalidLength,
    SealApprovalRefused,
    SealExpired,
    SealImageInvalid,
    SealNotActive,
    SealNotFound,
    SealStateConflict,
    SignerCertificateExpired,
    SignerCertificateRevoked,
    SignerNotInSeal,
    TimestampUnavailable,
    TrustError,
    UnsupportedAlgorithm,
    ValidationFailed,
)
from trust.keys import KeyAlgorithm
from trust.sm2.select import get_backend
from trust.sm3 import sm3

USER = Actor("user-1")


@pytest.fixture
def env(sqlite_url: str) -> Iterator[SealEnv]:
    built = seal_env(sqlite_url)
    yield built
    built.close()


@pytest.fixture
def signer(env: SealEnv) -> StampingSigner:
    return env.add_signer("signer-1")


def stamp(env: SealEnv, esid: str, signer: StampingSigner, **fields: object) -> bytes:
    values: dict[str, object] = {"property_info": "/Doc_0/Signs/Sign_0/Signature.xml"}
    values.update(fields)
    if "data" not in values and "data_sm3" not in values:
        values["data"] = b"<Signature/>"
    request = StampRequest(esid, signer.signer_id, **values)  # type: ignore[arg-type]
    return env.service.stamp(request, USER).signature


def actions(env: SealEnv) -> list[tuple[str, str]]:
    return [(r.action, r.outcome) for r in env.audit.tail(200) if r.action.startswith("seal.")]


def test_lifecycle_on_both_databases(database_url: str) -> None:
    env = seal_env(database_url)
    try:
        signer = env.add_signer("signer-1")
        esid = env.apply(signer, applicant="officer-a")
        assert env.service.get(esid).status is SealStatus.APPLIED
        with pytest.raises(SealApprovalRefused):
            env.service.approve(esid, actor="officer-a")  # the applicant
        with pytest.raises(SealStateConflict):
            env.service.make(esid, actor="officer-b")  # not approved yet
        assert env.service.approve(esid, actor="officer-b").status is SealStatus.APPROVED
        made = env.service.make(esid, actor="officer-b")
        assert made.status is SealStatus.ACTIVE and made.eseal is not None
        assert [c.status for c in env.service.history(esid)] == [
            SealStatus.APPLIED,
            SealStatus.APPROVED,
            SealStatus.MADE,
            SealStatus.ACTIVE,
        ]
        assert env.service.list_seals(status="active")[0].esid == esid
        stamp(env, esid, signer)
        assert actions(env) == [
            ("seal.apply", "success"),
            ("seal.approve", "failure"),
            ("seal.make", "failure"),
            ("seal.approve", "success"),
            ("seal.make", "success"),
            ("seal.stamp", "success"),
        ]
    finally:
        env.close()


def test_approvals_needed_are_configurable(sqlite_url: str) -> None:
    env = seal_env(sqlite_url, seal_required_approvals=2)
    try:
        esid = env.apply(env.add_signer("signer-1"))
        record = env.service.approve(esid, actor="officer-b")
        assert record.status is SealStatus.APPLIED and record.approvals == ("officer-b",)
        with pytest.raises(SealStateConflict):
            env.service.make(esid, actor="officer-b")
        with pytest.raises(SealApprovalRefused):
            env.service.approve(esid, actor="officer-b")  # twice by one officer
        record = env.service.approve(esid, actor="officer-c")
        assert record.status is SealStatus.APPROVED
        assert set(record.approvals) == {"officer-b", "officer-c"}
        with pytest.raises(SealStateConflict):
            env.service.approve(esid, actor="officer-d")  # approved already
        assert env.service.make(esid, actor="officer-c").status is SealStatus.ACTIVE
    finally:
        env.close()


def test_status_at_any_instant_across_suspend_resume_revoke(
    env: SealEnv, signer: StampingSigner
) -> None:
    step = timedelta(hours=1)
    t0 = env.clock.now()
    esid = env.apply(signer, valid_start=t0, valid_end=t0 + timedelta(days=30))
    env.clock.advance(step)
    env.service.approve(esid, actor="officer-b")
    env.clock.advance(step)
    env.service.make(esid, actor="officer-b")
    env.clock.advance(step)
    env.service.suspend(esid, actor="officer-b", reason="key holder on leave")
    env.clock.advance(step)
    env.service.resume(esid, actor="officer-b")
    env.clock.advance(step)
    env.service.suspend(esid, actor="officer-c")
    env.clock.advance(step)
    env.service.revoke(esid, actor="officer-c", reason="organisation dissolved")
    expected = [
        SealStatus.APPLIED,
        SealStatus.APPROVED,
        SealStatus.ACTIVE,
        SealStatus.SUSPENDED,
        SealStatus.ACTIVE,
        SealStatus.SUSPENDED,
        SealStatus.REVOKED,
    ]
    half = step / 2
    for n, status in enumerate(expected):
        assert env.service.status_at(esid, t0 + n * step + half).status is status, n
        assert env.service.status_at(esid, t0 + n * step).status is status, n  # at the change
    assert env.service.status_at(esid, t0 - half).status is None  # before the application
    assert env.service.status_at(esid, t0 + timedelta(days=60)).status is SealStatus.REVOKED
    history = env.service.history(esid)
    assert history[4].reason == "key holder on leave" and history[4].actor == "officer-b"
    with pytest.raises(SealStateConflict):
        env.service.resume(esid, actor="officer-b")  # revocation is final
    with pytest.raises(SealStateConflict):
        env.service.suspend(esid, actor="officer-b")
    with pytest.raises(SealNotFound):
        env.service.status_at("no-such-seal")
    with pytest.raises(ValidationFailed):
        env.service.status_at(esid, t0.replace(tzinfo=None))


def test_expiry_recorded_at_the_end_of_validity(env: SealEnv, signer: StampingSigner) -> None:
    now = env.clock.now()
    end = now + timedelta(days=1)
    esid = env.active_seal(signer, valid_end=end)
    env.clock.advance(timedelta(days=2))
    assert env.service.status_at(esid).status is SealStatus.EXPIRED  # before any sweep
    assert env.service.status_at(esid, end - timedelta(seconds=1)).status is SealStatus.ACTIVE
    with pytest.raises(SealExpired):
        stamp(env, esid, signer)
    with pytest.raises(SealStateConflict):
        env.service.suspend(esid, actor="officer-b")
    assert env.service.get(esid).status is SealStatus.EXPIRED
    last = env.service.history(esid)[-1]
    assert (last.status, last.at, last.actor) == (SealStatus.EXPIRED, end, "seal-service")
    assert env.service.expire_due() == 0  # recorded once


def test_expire_due_sweeps(env: SealEnv, signer: StampingSigner) -> None:
    ids = [env.active_seal(signer, valid_end=env.clock.now() + timedelta(days=1)) for _ in "ab"]
    env.clock.advance(timedelta(days=2))
    assert env.service.expire_due() == 2
    assert {env.service.get(i).status for i in ids} == {SealStatus.EXPIRED}


def test_a_seal_made_before_its_validity_becomes_active_then(
    env: SealEnv, signer: StampingSigner
) -> None:
    start = env.clock.now() + timedelta(days=1)
    esid = env.active_seal(signer, valid_start=start)
    assert env.service.get(esid).status is SealStatus.MADE
    with pytest.raises(SealNotActive):
        stamp(env, esid, signer)
    env.clock.advance(timedelta(days=2))
    assert env.service.status_at(esid).status is SealStatus.ACTIVE
    assert stamp(env, esid, signer)


def test_stamp_refusals(env: SealEnv, signer: StampingSigner) -> None:
    other = env.add_signer("signer-2")
    esid = env.active_seal(signer)
    with pytest.raises(SignerNotInSeal):
        stamp(env, esid, other)
    env.service.suspend(esid, actor="officer-b")
    with pytest.raises(SealNotActive):
        stamp(env, esid, signer)
    env.service.resume(esid, actor="officer-b")
    stamp(env, esid, signer)
    # Revoked (or on hold) signer certificate.
    env.ca.revoke(signer.serial_hex, "certificateHold")
    with pytest.raises(SignerCertificateRevoked):
        stamp(env, esid, signer)
    env.ca.release_hold(signer.serial_hex)
    stamp(env, esid, signer)
    env.ca.revoke(signer.serial_hex, "keyCompromise")
    with pytest.raises(SignerCertificateRevoked):
        stamp(env, esid, signer)
    # An expired signer certificate under a seal still valid.
    short = env.add_signer("signer-3", validity_days=1)
    esid3 = env.active_seal(short, other)
    env.clock.advance(timedelta(days=2))
    with pytest.raises(SignerCertificateExpired):
        stamp(env, esid3, short)
    stamp(env, esid3, other)
    with pytest.raises(TimestampUnavailable):
        stamp(env, esid3, other, timestamp=True)  # no TSA wired here
    with pytest.raises(ValidationFailed):
        stamp(env, esid3, other, data=b"x", data_sm3=sm3(b"x"))
    with pytest.raises(InvalidLength):
        stamp(env, esid3, other, data_sm3=b"short")
    with pytest.raises(ValidationFailed):
        stamp(env, esid3, other, property_info="非ASCII")
    refused = [a for a in actions(env) if a == ("seal.stamp", "failure")]
    assert len(refused) == 9


def test_apply_checks_its_input(env: SealEnv, signer: StampingSigner) -> None:
    ecdsa_cert = make_chain(KeyAlgorithm.ECDSA_P256)[1].dump()
    bad: list[tuple[dict[str, Any], type[TrustError]]] = [
        ({"picture": b"GIF89a" + bytes(10)}, SealImageInvalid),
        ({"picture_type": "SVG"}, SealImageInvalid),  # PNG bytes declared SVG
        ({"picture": PNG + bytes(300 * 1024)}, SealImageInvalid),
        ({"seal_type": "unknown"}, ValidationFailed),
        ({"esid": "has space"}, ValidationFailed),
        ({"width_mm": 0}, ValidationFailed),
        ({"valid_end": env.clock.now() - timedelta(days=1)}, ValidationFailed),
        ({"signer_certificate_sm3": (sm3(signer.certificate),)}, ValidationFailed),  # both lists
        ({"signer_certificates": (b"not a certificate",)}, ValidationFailed),
        ({"signer_certificates": ()}, ValidationFailed),  # none
        ({"name": " padded "}, ValidationFailed),
        ({"signer_certificates": (ecdsa_cert,)}, UnsupportedAlgorithm),  # GB/T 38540 is SM2
    ]
    for fields, error in bad:
        with pytest.raises(error):
            env.apply(signer, **fields)
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40mm"/>'
    beijing = timezone(timedelta(hours=8))
    start = datetime(2026, 1, 1, tzinfo=beijing)
    applied = env.service.apply(
        ApplyRequest(
            seal_type="official",
            name="测试章",
            organization="测试单位",
            picture=svg,
            picture_type="svg",
            width_mm=40,
            height_mm=40,
            valid_start=start,
            valid_end=env.clock.now() + timedelta(days=30),
            signer_certificates=(signer.certificate,),
            esid="1101000000001",
        ),
        actor="officer-a",
    )
    esid = applied.esid
    # Kept in UTC, the same instant (GeneralizedTime in the made seal is UTC), in the
    # answer as in the store.
    for record in (applied, env.service.get(esid)):
        assert record.picture_type == "SVG"
        assert record.valid_start == start and record.valid_start.utcoffset() == timedelta(0)
    with pytest.raises(Conflict):
        env.apply(signer, esid="1101000000001")
    assert env.service.get(esid).status is SealStatus.APPLIED


def test_digest_listed_signer_can_stamp(env: SealEnv, signer: StampingSigner) -> None:
    esid = env.active_seal(
        signer_certificates=(), signer_certificate_sm3=(sm3(signer.certificate),)
    )
    signature = stamp(env, esid, signer)
    from seals.verify import CheckStatus, verify_signature

    result = verify_signature(signature, original=b"<Signature/>")
    assert result.check("signer_in_seal").status is CheckStatus.PASSED  # type: ignore[arg-type]


def _pure_verify(cert_der: bytes, signature: bytes, message: bytes) -> None:
    point = x509.Certificate.load(cert_der).public_key["public_key"].native
    get_backend("pure").load_public(point).verify(message, signature)


def test_made_seal_and_stamp_read_independently_and_verified_with_gmssl(
    env: SealEnv, signer: StampingSigner
) -> None:
    esid = env.active_seal(signer)
    record = env.service.get(esid)
    assert record.eseal is not None
    # SESeal: SEQUENCE {SES_SealInfo, cert OCTET STRING, OID, BIT STRING}
    outer = read_one(record.eseal)
    info, maker_cert, alg, signed_value = read_all(outer.content)
    assert tags([info, maker_cert, alg, signed_value]) == [0x30, 0x04, 0x06, 0x03]
    header, es_id, prop, picture = read_all(info.content)
    h_id, h_version, h_vid = read_all(header.content)
    assert (h_id.content, der_integer(h_version), h_vid.content) == (b"ES", 4, b"TRUSTSVC")
    assert es_id.tag == 0x16 and es_id.content == esid.encode()
    p_type, p_name, p_list_type, p_list, created, start, end = read_all(prop.content)
    assert der_integer(p_type) == env.settings.seal_type_codes["contract"]
    assert p_name.content.decode() == "测试合同专用章"
    assert der_integer(p_list_type) == 1
    assert [c.content for c in read_all(p_list.content)] == [signer.certificate]
    assert tags([created, start, end]) == [0x18, 0x18, 0x18]
    assert start.content == record.valid_start.strftime("%Y%m%d%H%M%SZ").encode()
    assert end.content == record.valid_end.strftime("%Y%m%d%H%M%SZ").encode()
    pic_type, pic_data, width, height = read_all(picture.content)
    assert (pic_type.content, pic_data.content, der_integer(width), der_integer(height)) == (
        b"PNG",
        PNG,
        40,
        40,
    )
    assert alg.content == SM3_WITH_SM2_DER and signed_value.content[0] == 0
    # The maker certificate is the CA-issued seal_maker certificate; it signed the info.
    cert = x509.Certificate.load(maker_cert.content)
    assert cert.issuer == x509.Certificate.load(env.issuing_certificate).subject
    _pure_verify(maker_cert.content, signed_value.content[1:], info.encoding)

    # SES_Signature: SEQUENCE {TBS_Sign, cert, OID, BIT STRING}
    data = "电子证照".encode()
    signature = stamp(env, esid, signer, data=data)
    to_sign, signer_cert, s_alg, value = read_all(read_one(signature).content)
    assert tags([to_sign, signer_cert, s_alg, value]) == [0x30, 0x04, 0x06, 0x03]
    version, eseal, time_info, data_hash, property_info = read_all(to_sign.content)
    assert der_integer(version) == 4
    assert eseal.encoding == record.eseal
    assert time_info.tag == 0x18
    assert time_info.content == env.clock.now().strftime("%Y%m%d%H%M%SZ").encode()
    assert data_hash.tag == 0x03 and data_hash.content == b"\x00" + sm3(data)
    assert property_info.content == b"/Doc_0/Signs/Sign_0/Signature.xml"
    assert signer_cert.content == signer.certificate and s_alg.content == SM3_WITH_SM2_DER
    _pure_verify(signer.certificate, value.content[1:], to_sign.encoding)


def test_made_seal_and_stamp_verify_with_openssl(
    env: SealEnv, signer: StampingSigner, tmp_path: Path
) -> None:
    """The maker's and the signer's SM2 signatures checked by the openssl command line
    (pkeyutl, SM3 with Z over the default ID), over the bytes GB/T 38540 names."""
    esid = env.active_seal(signer)
    eseal = env.service.get(esid).eseal
    assert eseal is not None
    info, maker_cert, _, signed_value = read_all(read_one(eseal).content)
    to_sign, signer_cert, _, value = read_all(read_one(stamp(env, esid, signer)).content)
    for name, cert, message, signature in (
        ("maker", maker_cert.content, info.encoding, signed_value.content[1:]),
        ("signer", signer_cert.content, to_sign.encoding, value.content[1:]),
    ):
        key = x509.Certificate.load(cert).public_key.dump()
        pub = write(tmp_path / f"{name}.pem", pem.armor("PUBLIC KEY", key))
        out = run_openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
            "-pkeyopt", DISTID, "-in", write(tmp_path / f"{name}.tbs", message),
            "-sigfile", write(tmp_path / f"{name}.sig", signature),
        )  # fmt: skip
        assert "Signature Verified Successfully" in out, name


def test_concurrent_approvals_approve_once(sqlite_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    env = seal_env(sqlite_url, seal_required_approvals=2)
    try:
        for _ in range(3):
            esid = env.apply(env.add_signer("signer-1"))
            with ThreadPoolExecutor(2) as pool:
                officers = ["officer-b", "officer-c"]
                approve = env.service.approve
                records = list(pool.map(lambda o: approve(esid, actor=o), officers))  # noqa: B023
            assert {r.esid for r in records} == {esid}
            statuses = [c.status for c in env.service.history(esid)]
            assert statuses == [SealStatus.APPLIED, SealStatus.APPROVED]
            assert len(env.service.get(esid).approvals) == 2
            with pytest.raises(SealStateConflict):
                env.service.approve(esid, actor="officer-d")  # approved already
    finally:
        env.close()


def test_stamping_caches_are_dropped_by_broadcasts(env: SealEnv, signer: StampingSigner) -> None:
    """Two workers sharing coordination: what one changes, the other sees at the next
    stamp, though both keep the seal and the CA status between stamps."""
    from ca.service import STATUS_CHANNEL
    from seals.wiring import build_seal_service
    from trust.coordination.memory import MemoryCoordination

    coordination = MemoryCoordination(env.clock)
    # Kept long enough that only a broadcast drops a CA status here.
    settings = env.settings.model_copy(update={"ca_ocsp_status_seconds": 600.0})
    a, b = (
        build_seal_service(
            settings,
            env.db,
            env.keystore,
            env.ca,
            env.clock,
            env.audit,
            signers=env.signers,
            coordination=coordination,
        )
        for _ in "ab"
    )
    esid = env.active_seal(signer)
    request = StampRequest(esid, signer.signer_id, "/doc", data=b"x")

    def refused(error: type[TrustError]) -> None:
        """``a`` refuses a stamp once the broadcast (delivered on a thread) arrives."""
        deadline = time.monotonic() + 5
        while True:
            try:
                a.stamp(request, USER)
            except error:
                return
            assert time.monotonic() < deadline, f"still stamping, {error.code} expected"
            time.sleep(0.01)

    def stamps() -> None:
        """``a`` stamps again once the broadcast arrives."""
        deadline = time.monotonic() + 5
        while True:
            try:
                a.stamp(request, USER)
                return
            except TrustError:
                assert time.monotonic() < deadline
                time.sleep(0.01)

    assert a.stamp(request, USER).signature
    assert a.status_at(esid).status is SealStatus.ACTIVE  # verification's read, kept
    assert a.registered("not-yet") is None
    b.suspend(esid, actor="officer-b")
    refused(SealNotActive)
    assert a.status_at(esid).status is SealStatus.SUSPENDED
    b.apply(
        ApplyRequest(
            "contract", "后来的章", "测试单位", PNG, "PNG", 40, 40,
            env.clock.now(), env.clock.now() + timedelta(days=1),
            signer_certificates=(signer.certificate,), esid="not-yet",
        ),
        actor="officer-a",
    )  # fmt: skip
    deadline = time.monotonic() + 5
    while a.registered("not-yet") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    b.resume(esid, actor="officer-b")
    stamps()
    # A revocation by a CA that broadcasts nothing is not seen while the answer is kept...
    env.ca.revoke(signer.serial_hex, "certificateHold")
    assert a.stamp(request, USER).signature
    # ...and is at once when the CA's status broadcast arrives.
    coordination.publish(STATUS_CHANNEL, signer.serial_hex)
    refused(SignerCertificateRevoked)
    # A disabled signer is refused at once: its record is read at every stamp.
    env.ca.release_hold(signer.serial_hex)
    coordination.publish(STATUS_CHANNEL, signer.serial_hex)
    stamps()
    env.signers.set_status(signer.signer_id, "disabled", Actor("test-admin", frozenset({"admin"})))
    with pytest.raises(TrustError) as disabled:
        a.stamp(request, USER)
    assert disabled.value.code == "signer_disabled"
