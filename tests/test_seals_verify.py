"""Seal and signature verification: the interop samples give their README outcomes, and
every sub-indication is produced by a seal or signature made to fail that way."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from asn1crypto import algos, cms, core, tsp

from seals.asn1 import v4
from seals.asn1.common import SignAlgorithm
from seals.build import build_seal, build_signature, build_tbs_sign
from seals.parse import CertDigest, parse_signature
from seals.verify import (
    CheckName,
    CheckStatus,
    Indication,
    SubIndication,
    VerificationResult,
    verify_seal,
    verify_signature,
)
from tests.seals_helpers import NOW, identity, make_signature, ofd_signature, seal_info, vector
from trust import oids
from trust.errors import InvalidLength, ValidationFailed
from trust.sm3 import sm3

PASSED, FAILED, NOT_CHECKED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.NOT_CHECKED


def status(result: VerificationResult, name: CheckName) -> tuple[CheckStatus, object]:
    check = result.check(name)
    return check.status, check.sub_indication


@pytest.fixture(scope="module")
def maker():  # type: ignore[no-untyped-def]
    return identity("Seal Maker CA")


@pytest.fixture(scope="module")
def signer():  # type: ignore[no-untyped-def]
    return identity("Signer")


# --- the samples (tests/vectors/seals/README.md) -----------------------------------


@pytest.mark.parametrize(
    ("name", "version", "rule"),
    [
        ("UserV1.esl", 1, "SEQUENCE{sealInfo, cert, alg} (v1 rule)"),
        ("UserV4.esl", 4, "over DER(SES_SealInfo)"),
        ("UserV5.esl", 5, "over DER(SES_SealInfo)"),
        ("UserV5_ts.esl", 5, "over DER(SES_SealInfo)"),
    ],
)
def test_sample_seals_maker_signature_valid(name: str, version: int, rule: str) -> None:
    result = verify_seal(vector(name))
    assert result.version == version
    maker = result.check(CheckName.SEAL_MAKER_SIGNATURE)
    assert maker.status is PASSED
    assert rule in maker.message
    assert "only over" not in maker.message  # the standard rule, not the fallback
    assert result.indication is Indication.INDETERMINATE  # chains are not checked here


def test_v5_placeholder_timestamp_is_reported_unparseable() -> None:
    result = verify_seal(vector("UserV5_ts.esl"))
    ts = result.check(CheckName.SEAL_TIMESTAMP)
    assert (ts.status, ts.sub_indication) == (NOT_CHECKED, SubIndication.TIMESTAMP_UNPARSEABLE)
    assert "unparseable timestamp" in ts.message
    assert status(verify_seal(vector("UserV5.esl")), CheckName.SEAL_TIMESTAMP) == (
        CheckStatus.NOT_APPLICABLE,  # no timestamp in this one
        None,
    )


def test_vendor_seal_parses_but_maker_signature_fails() -> None:
    result = verify_seal(vector("SESealData.DER"))
    assert result.version == 4
    assert status(result, CheckName.FORMAT) == (PASSED, None)
    assert status(result, CheckName.SEAL_MAKER_SIGNATURE) == (
        FAILED,
        SubIndication.SEAL_MAKER_SIGNATURE_INVALID,
    )
    assert result.indication is Indication.FAILED


@pytest.mark.parametrize(("name", "version"), [("SignedValueV4.dat", 4), ("SignedValueV5.dat", 5)])
def test_sample_signatures_valid_but_data_hash_mismatch(name: str, version: int) -> None:
    result = verify_signature(vector(name), original=vector("Signature.xml"))
    assert result.version == version
    assert status(result, CheckName.SIGNER_SIGNATURE) == (PASSED, None)
    assert status(result, CheckName.SIGNER_IN_SEAL) == (PASSED, None)
    assert status(result, CheckName.SEAL_MAKER_SIGNATURE) == (PASSED, None)
    assert status(result, CheckName.DATA_HASH) == (FAILED, SubIndication.DATA_HASH_MISMATCH)
    assert result.indication is Indication.FAILED


@pytest.mark.parametrize(
    "name", ["SESV4SignDoc.ofd", "v4signed.ofd", "signedFile.ofd", "allprotected.ofd"]
)
def test_ofd_embedded_signatures_valid(name: str) -> None:
    signed_value, signature_xml = ofd_signature(name)
    assert parse_signature(signed_value).data_hash == sm3(signature_xml)
    result = verify_signature(signed_value, original=signature_xml)
    for check in (
        CheckName.FORMAT,
        CheckName.SIGNER_SIGNATURE,
        CheckName.SIGNER_IN_SEAL,
        CheckName.SEAL_MAKER_SIGNATURE,
        CheckName.DATA_HASH,
    ):
        assert status(result, check) == (PASSED, None), result.check(check).message


def test_ofd_sample_signed_after_its_seal_expired() -> None:
    # SESV4SignDoc.ofd: timeInfo 2026-08-04, seal valid 2020-04-22 .. 2022-04-22 (asn1parse).
    result = verify_signature(ofd_signature("SESV4SignDoc.ofd")[0])
    assert status(result, CheckName.SEAL_VALIDITY) == (FAILED, SubIndication.SEAL_EXPIRED)


def test_not_yet_checkable_parts_are_listed_not_checked() -> None:
    result = verify_signature(vector("SignedValueV4.dat"))
    for name in (
        CheckName.SEAL_MAKER_CERTIFICATE,
        CheckName.SIGNER_CERTIFICATE,
        CheckName.SEAL_STATUS,
        CheckName.DATA_HASH,
    ):
        assert status(result, name) == (NOT_CHECKED, None)
    assert "no trust anchor configured" in result.check(CheckName.SIGNER_CERTIFICATE).message
    assert result.check(CheckName.DATA_HASH).message == "original not supplied"


# --- builder-made seals and signatures ---------------------------------------------


def test_builder_signature_verifies_completely(maker, signer) -> None:  # type: ignore[no-untyped-def]
    result = verify_signature(make_signature(maker, signer, b"doc"), original=b"doc")
    crypto = [c for c in result.checks if c.status is PASSED]
    assert [c.name for c in crypto] == [
        CheckName.FORMAT,
        CheckName.SIGNER_SIGNATURE,
        CheckName.SIGNER_IN_SEAL,
        CheckName.SEAL_MAKER_SIGNATURE,
        CheckName.SEAL_VALIDITY,
        CheckName.DATA_HASH,
    ]
    assert all(c.status is PASSED for c in crypto)
    assert status(
        verify_signature(make_signature(maker, signer, b"doc"), original_sm3=sm3(b"doc")),
        CheckName.DATA_HASH,
    ) == (PASSED, None)


def test_data_hash_mismatch(maker, signer) -> None:  # type: ignore[no-untyped-def]
    signature = make_signature(maker, signer, b"doc")
    for result in (
        verify_signature(signature, original=b"doc!"),
        verify_signature(signature, original_sm3=sm3(b"doc!")),
    ):
        assert status(result, CheckName.DATA_HASH) == (FAILED, SubIndication.DATA_HASH_MISMATCH)


def test_data_hash_arguments_are_checked(maker, signer) -> None:  # type: ignore[no-untyped-def]
    signature = make_signature(maker, signer)
    with pytest.raises(ValidationFailed):
        verify_signature(signature, original=b"a", original_sm3=sm3(b"a"))
    with pytest.raises(InvalidLength):
        verify_signature(signature, original_sm3=b"short")


def test_maker_signature_by_another_key(maker, signer) -> None:  # type: ignore[no-untyped-def]
    impostor = identity("Impostor")
    seal = build_seal(seal_info([signer.cert]), maker.cert, impostor.key.sign)
    result = verify_seal(seal)
    assert status(result, CheckName.SEAL_MAKER_SIGNATURE) == (
        FAILED,
        SubIndication.SEAL_MAKER_SIGNATURE_INVALID,
    )


def test_maker_signature_over_v1_range_passes_with_a_warning(maker, signer) -> None:  # type: ignore[no-untyped-def]
    info = seal_info([signer.cert])
    cert = core.OctetString(maker.cert).dump()
    alg = core.ObjectIdentifier(oids.SM3_WITH_SM2).dump()
    v1_range = core.Sequence.load(b"\x30" + _der_length(len(info + cert + alg)) + info + cert + alg)
    seal = v4.SESeal(
        {
            "e_seal_info": v4.SESSealInfo.load(info),
            "cert": maker.cert,
            "sign_alg_id": SignAlgorithm(name="oid", value=oids.SM3_WITH_SM2),
            "signed_value": maker.key.sign(v1_range.dump()),
        }
    ).dump()
    maker_check = verify_seal(seal).check(CheckName.SEAL_MAKER_SIGNATURE)
    assert maker_check.status is PASSED
    assert "only over SEQUENCE{sealInfo, cert, alg}" in maker_check.message


def test_signer_signature_by_another_key(maker, signer) -> None:  # type: ignore[no-untyped-def]
    impostor = identity("Impostor")
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = build_tbs_sign(seal=seal, time_info=NOW, data_hash=sm3(b"x"), property_info="x")
    result = verify_signature(build_signature(tbs, signer.cert, impostor.key.sign))
    assert status(result, CheckName.SIGNER_SIGNATURE) == (FAILED, SubIndication.SIG_CRYPTO_FAILURE)
    assert status(result, CheckName.SEAL_MAKER_SIGNATURE) == (PASSED, None)


def test_mangled_signer_signature_value() -> None:
    data = bytearray(vector("SignedValueV4.dat"))
    data[-1] ^= 0x01  # last byte of s inside the signature BIT STRING
    result = verify_signature(bytes(data))
    assert status(result, CheckName.SIGNER_SIGNATURE) == (FAILED, SubIndication.SIG_CRYPTO_FAILURE)


def test_signer_not_in_seal(maker, signer) -> None:  # type: ignore[no-untyped-def]
    other = identity("Someone else")
    signature = make_signature(maker, signer, info=seal_info([other.cert]))
    result = verify_signature(signature)
    assert status(result, CheckName.SIGNER_IN_SEAL) == (FAILED, SubIndication.SIGNER_NOT_IN_SEAL)
    assert status(result, CheckName.SIGNER_SIGNATURE) == (PASSED, None)


@pytest.mark.parametrize(
    ("algorithm", "hash_name"),
    [
        ("SM3", "sm3"),
        ("1.2.156.10197.1.401", "sm3"),
        ("SHA1", "sha1"),
        ("SHA-1", "sha1"),
        ("sha256", "sha256"),
        ("SHA-256", "sha256"),
    ],
)
def test_signer_in_seal_by_digest(maker, signer, algorithm: str, hash_name: str) -> None:  # type: ignore[no-untyped-def]
    digest = (
        sm3(signer.cert) if hash_name == "sm3" else hashlib.new(hash_name, signer.cert).digest()
    )
    decoy = CertDigest("SM3", sm3(b"another certificate"))
    info = seal_info(digests=[decoy, CertDigest(algorithm, digest)])
    result = verify_signature(make_signature(maker, signer, info=info))
    check = result.check(CheckName.SIGNER_IN_SEAL)
    assert (check.status, check.message) == (
        PASSED,
        f"signer matches certList digest 1 ({algorithm})",
    )


def test_signer_not_in_seal_by_digest(maker, signer) -> None:  # type: ignore[no-untyped-def]
    info = seal_info(digests=[CertDigest("SM3", sm3(b"x")), CertDigest("MD5", bytes(16))])
    result = verify_signature(make_signature(maker, signer, info=info))
    check = result.check(CheckName.SIGNER_IN_SEAL)
    assert (check.status, check.sub_indication) == (FAILED, SubIndication.SIGNER_NOT_IN_SEAL)
    assert "not known: MD5" in check.message


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(days=31), SubIndication.SEAL_EXPIRED),
        (timedelta(days=-31), SubIndication.SEAL_NOT_YET_VALID),
    ],
)
def test_signing_time_outside_seal_validity(maker, signer, offset, expected) -> None:  # type: ignore[no-untyped-def]
    signature = make_signature(maker, signer, time_info=NOW + offset)
    assert status(verify_signature(signature), CheckName.SEAL_VALIDITY) == (FAILED, expected)
    seal = parse_signature(signature).seal.der
    assert status(verify_seal(seal, at=NOW + offset), CheckName.SEAL_VALIDITY) == (FAILED, expected)
    assert status(verify_seal(seal, at=NOW), CheckName.SEAL_VALIDITY) == (PASSED, None)


def test_unsupported_seal_version() -> None:
    data = bytearray(vector("UserV4.esl"))
    # SESeal(30 82 ..) > SES_SealInfo(30 82 ..) > SES_Header(30 13) > id(16 02 "ES") > version
    assert data[8:16] == bytes.fromhex("3013160245530201")
    data[16] = 6
    for result in (verify_seal(bytes(data)), verify_signature(_header_version(6))):
        assert result.version is None
        assert status(result, CheckName.FORMAT) == (FAILED, SubIndication.UNSUPPORTED_SEAL_VERSION)


def test_format_failure() -> None:
    for result in (verify_seal(b"\x30\x03\x02\x01"), verify_signature(b"not DER")):
        assert result.indication is Indication.FAILED
        assert status(result, CheckName.FORMAT) == (FAILED, SubIndication.FORMAT_FAILURE)


def test_unusable_maker_certificate_or_algorithm_is_a_format_failure(signer) -> None:  # type: ignore[no-untyped-def]
    seal = build_seal(seal_info([signer.cert]), b"not a certificate", signer.key.sign)
    check = verify_seal(seal).check(CheckName.SEAL_MAKER_SIGNATURE)
    assert (check.status, check.sub_indication) == (FAILED, SubIndication.FORMAT_FAILURE)
    # signAlgID 1.2.156.10197.1.501 -> .504 (RSA with SM3); it is outside the signed bytes.
    data = vector("UserV4.esl")
    oid = bytes.fromhex("06082a811ccf55018375")
    at = len(data) - 74 - len(oid)  # signAlgID, then the 74-byte signedValue BIT STRING
    assert data[at : at + len(oid)] == oid
    patched = data[: at + len(oid) - 1] + b"\x78" + data[at + len(oid) :]
    check = verify_seal(patched).check(CheckName.SEAL_MAKER_SIGNATURE)
    assert (check.status, check.sub_indication) == (FAILED, SubIndication.FORMAT_FAILURE)
    assert "1.2.156.10197.1.504" in check.message


def test_signature_timestamp_unparseable_and_parseable(maker, signer) -> None:  # type: ignore[no-untyped-def]
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = build_tbs_sign(seal=seal, time_info=NOW, data_hash=sm3(b"x"), property_info="x")

    junk = build_signature(tbs, signer.cert, signer.key.sign, lambda value: b"\x01\x02\x03")
    check = verify_signature(junk).check(CheckName.SIGNATURE_TIMESTAMP)
    assert (check.status, check.sub_indication) == (
        NOT_CHECKED,
        SubIndication.TIMESTAMP_UNPARSEABLE,
    )
    assert status(verify_signature(junk), CheckName.SIGNER_SIGNATURE) == (PASSED, None)

    token = build_signature(tbs, signer.cert, signer.key.sign, _fake_token)
    check = verify_signature(token).check(CheckName.SIGNATURE_TIMESTAMP)
    assert (check.status, check.sub_indication) == (NOT_CHECKED, None)
    assert NOW.isoformat() in check.message


# --- helpers -----------------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _header_version(version: int) -> bytes:
    data = bytearray(vector("SignedValueV4.dat"))
    # SES_Signature > TBS_Sign > version(02 01 04) > SESeal > SES_SealInfo > SES_Header(30 13)
    assert data[8:11] == b"\x02\x01\x04"
    assert data[19:27] == bytes.fromhex("3013160245530201")
    data[27] = version
    return bytes(data)


def _fake_token(signature_value: bytes) -> bytes:
    """A TimeStampToken-shaped ContentInfo (no signer): enough to parse, not to verify."""
    info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": "1.2.3.4",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sm3"}),
                "hashed_message": sm3(signature_value),
            },
            "serial_number": 1,
            "gen_time": NOW,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "tst_info", "content": info},
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
