"""Version detection and parsing: the samples, the tolerated variations, the signed bytes
taken as found, and fuzzing (nothing but MalformedASN1 / UnsupportedSealVersion escapes)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seals.asn1 import common, v1, v4
from seals.build import build_seal, build_tbs_sign
from seals.detect import SealVersion, detect_seal_version, detect_signature_version
from seals.parse import CertListType, parse_seal, parse_signature
from seals.verify import CheckName, CheckStatus, verify_seal, verify_signature
from tests.seals_helpers import NOW, Identity, identity, ofd_signature, seal_info, vector
from trust import oids
from trust.errors import MalformedASN1, UnsupportedSealVersion
from trust.sm3 import sm3

SEALS = ["UserV1.esl", "UserV4.esl", "UserV5.esl", "UserV5_ts.esl", "SESealData.DER"]
SIGNATURES = ["SignedValueV4.dat", "SignedValueV5.dat"]
PARSE_ERRORS = (MalformedASN1, UnsupportedSealVersion)
CST = datetime.strptime("+0800", "%z").tzinfo


@pytest.fixture(scope="module")
def maker() -> Identity:
    return identity("Seal Maker CA")


@pytest.fixture(scope="module")
def signer() -> Identity:
    return identity("Signer")


# --- detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version"),
    [("UserV1.esl", 1), ("UserV4.esl", 4), ("UserV5.esl", 5), ("UserV5_ts.esl", 5)]
    + [("SESealData.DER", 4)],
)
def test_detect_seal_version(name: str, version: int) -> None:
    assert detect_seal_version(vector(name)) == version
    assert parse_seal(vector(name)).info.header.version == version


@pytest.mark.parametrize(("name", "version"), [("SignedValueV4.dat", 4), ("SignedValueV5.dat", 5)])
def test_detect_signature_version(name: str, version: int) -> None:
    assert detect_signature_version(vector(name)) == version
    assert parse_signature(vector(name)).tbs_version == version


def test_seal_and_signature_are_not_confused() -> None:
    with pytest.raises(MalformedASN1):
        parse_seal(vector("SignedValueV4.dat"))
    with pytest.raises(PARSE_ERRORS):
        parse_signature(vector("UserV4.esl"))


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\x00",  # no elements
        b"\x30\x09" + b"\x02\x01\x01" * 3,  # three elements
        b"\x30\x12" + b"\x02\x01\x01" * 6,  # six elements
    ],
)
def test_unknown_layouts(data: bytes) -> None:
    with pytest.raises(UnsupportedSealVersion) as seal_error:
        parse_seal(data)
    assert seal_error.value.code == "unsupported_seal_version"
    with pytest.raises(UnsupportedSealVersion):
        parse_signature(data)


@pytest.mark.parametrize("version", [0, 1, 3, 6, 127])
def test_unknown_header_version_in_v4_layout(version: int) -> None:
    data = bytearray(vector("UserV4.esl"))
    assert data[14:17] == b"\x02\x01\x04"  # SES_Header.version
    data[16] = version
    with pytest.raises(UnsupportedSealVersion, match=f"header version {version}"):
        parse_seal(bytes(data))


@pytest.mark.parametrize(
    "data", [b"", b"\x04\x00", b"\x30", b"\x30\x05\x02\x01", b"\x30\x06\x02\x01\x01\x04\x01\x00"]
)
def test_not_a_seal(data: bytes) -> None:
    with pytest.raises(MalformedASN1):
        parse_seal(data)
    with pytest.raises(MalformedASN1):
        parse_signature(data)


# --- the samples' fields and signed bytes --------------------------------------------


def test_v4_fields_and_signed_bytes_as_found() -> None:
    data = vector("UserV4.esl")
    seal = parse_seal(data)
    info = seal.info
    assert (info.header.id, info.header.vendor_id) == ("ES", "OFDR&WTest")
    assert info.property.cert_list_type is CertListType.CERTIFICATES
    assert len(info.property.certificates) == 1
    assert info.property.valid_start < info.property.valid_end
    assert (info.picture.type, info.picture.width, info.picture.height) == ("PNG", 40, 40)
    assert info.picture.data.startswith(b"\x89PNG")
    assert seal.signature_algorithm == oids.SM3_WITH_SM2
    # SES_SealInfo is the first element: 30 82 <len> starting at offset 4.
    info_len = int.from_bytes(data[6:8], "big") + 4
    assert seal.maker_signed_bytes == data[4 : 4 + info_len]
    assert seal.timestamp is None and seal.deviations == ()


def test_v1_maker_range_is_rebuilt_from_original_elements() -> None:
    data = vector("UserV1.esl")
    seal = parse_seal(data)
    assert seal.version is SealVersion.V1
    assert seal.maker_signed_bytes_fallback is None
    info_end = 4 + 4 + int.from_bytes(data[6:8], "big")
    info = data[4:info_end]
    sign_info = data[info_end:]
    cert_and_alg = sign_info[4 : 4 + int.from_bytes(sign_info[2:4], "big") - 75]  # minus BIT STR
    rebuilt = seal.maker_signed_bytes
    assert rebuilt.endswith(info + cert_and_alg)
    assert rebuilt[0] == 0x30


def test_non_der_vendor_seal_keeps_its_bytes() -> None:
    # The GOMAIN seal encodes ExtData.critical FALSE explicitly (DER omits a DEFAULT):
    # a re-encoding would drop it and the maker signature would no longer verify.
    signed_value, _ = ofd_signature("v4signed.ofd")
    seal = parse_signature(signed_value).seal
    assert b"\x01\x01\x00" in seal.maker_signed_bytes
    assert seal.maker_signed_bytes in signed_value
    assert seal.info.extensions[0].oid == "1.2.156.10197.6.7.2.2.1"
    assert verify_seal(seal).check(CheckName.SEAL_MAKER_SIGNATURE).status is CheckStatus.PASSED


def test_v5_timestamp_bytes() -> None:
    assert parse_seal(vector("UserV5_ts.esl")).timestamp == b"\x01\x02\x03"
    assert parse_seal(vector("UserV5.esl")).timestamp is None


def test_signature_fields() -> None:
    data = vector("SignedValueV4.dat")
    signature = parse_signature(data)
    assert signature.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert signature.signing_time == datetime(2020, 10, 12, 11, 14, 3, tzinfo=UTC)
    assert signature.time_info == b"20201012111403Z"
    assert signature.data_hash == bytes(32)
    assert signature.signer_cert in signature.seal.info.property.certificates
    assert signature.signer_signed_bytes == data[4 : 4 + 4 + int.from_bytes(data[6:8], "big")]
    assert signature.seal.der in signature.signer_signed_bytes


def test_indefinite_length_outer_sequence_keeps_signed_bytes() -> None:
    data = vector("UserV4.esl")
    ber = b"\x30\x80" + data[4:] + b"\x00\x00"
    seal = parse_seal(ber)
    assert seal.maker_signed_bytes == parse_seal(data).maker_signed_bytes
    assert verify_seal(ber).check(CheckName.SEAL_MAKER_SIGNATURE).status is CheckStatus.PASSED


# --- tolerated variations ---------------------------------------------------------------


def _alg(identifier: bool, null: bool = True) -> common.SignAlgorithm:
    if not identifier:
        return common.SignAlgorithm(name="oid", value=oids.SM3_WITH_SM2)
    value: dict[str, object] = {"algorithm": oids.SM3_WITH_SM2}
    if null:
        value["parameters"] = core.Null()
    return common.SignAlgorithm(name="algorithm_identifier", value=value)


@pytest.mark.parametrize("null", [True, False])
def test_algorithm_identifier_in_place_of_oid(
    maker: Identity, signer: Identity, null: bool
) -> None:
    info = seal_info([signer.cert])
    seal = v4.SESeal(
        {
            "e_seal_info": v4.SESSealInfo.load(info),
            "cert": maker.cert,
            "sign_alg_id": _alg(True, null),
            "signed_value": maker.key.sign(info),
        }
    ).dump()
    parsed = parse_seal(seal)
    assert parsed.signature_algorithm == oids.SM3_WITH_SM2
    assert any("AlgorithmIdentifier" in d for d in parsed.deviations)
    assert verify_seal(seal).check(CheckName.SEAL_MAKER_SIGNATURE).status is CheckStatus.PASSED


def test_algorithm_parameters_other_than_null_are_refused(maker: Identity) -> None:
    info = seal_info([maker.cert])
    alg = common.SignAlgorithm(
        name="algorithm_identifier",
        value={"algorithm": oids.SM3_WITH_SM2, "parameters": core.Integer(1)},
    )
    seal = v4.SESeal(
        {
            "e_seal_info": v4.SESSealInfo.load(info),
            "cert": maker.cert,
            "sign_alg_id": alg,
            "signed_value": maker.key.sign(info),
        }
    ).dump()
    with pytest.raises(MalformedASN1, match="NULL"):
        parse_seal(seal)


def test_tagged_seal_extensions_and_untagged_signature_parts(
    maker: Identity, signer: Identity
) -> None:
    ext = common.ExtensionDatas([{"extn_id": "1.2.3.4", "critical": True, "extn_value": b"v"}])
    info = v4.SESSealInfo.load(seal_info([signer.cert]))
    tagged = v4.SESSealInfo(
        {
            "header": info["header"],
            "es_id": info["es_id"],
            "property": info["property"],
            "picture": info["picture"],
            "ext_datas_tagged": ext,
        }
    ).dump()
    seal = build_seal_like(tagged, maker)
    tbs = v4.TBSSign(
        {
            "version": 4,
            "eseal": v4.SESeal.load(seal),
            "time_info": NOW,
            "data_hash": sm3(b"x"),
            "property_info": "x",
            "ext_datas_untagged": ext,
        }
    ).dump()
    signature = v4.SESSignature(
        {
            "to_sign": v4.TBSSign.load(tbs),
            "cert": signer.cert,
            "signature_alg_id": _alg(False),
            "signature": signer.key.sign(tbs),
            "time_stamp_untagged": b"\x01\x02\x03",
        }
    ).dump()
    parsed = parse_signature(signature)
    assert parsed.seal.info.extensions[0].oid == "1.2.3.4"
    assert parsed.seal.info.extensions[0].critical is True
    assert parsed.extensions[0].value == b"v"
    assert parsed.timestamp == b"\x01\x02\x03"
    assert len(parsed.deviations) == 2 and len(parsed.seal.deviations) == 1
    result = verify_signature(signature, original=b"x")
    assert all(c.status is not CheckStatus.FAILED for c in result.checks)


def build_seal_like(info: bytes, maker: Identity) -> bytes:
    """SESeal around ``info`` bytes that the strict builder would refuse (tagged extDatas)."""
    return v4.SESeal(
        {
            "e_seal_info": v4.SESSealInfo.load(info),
            "cert": maker.cert,
            "sign_alg_id": _alg(False),
            "signed_value": maker.key.sign(info),
        }
    ).dump()


def test_duplicate_extension_data_is_malformed(maker: Identity, signer: Identity) -> None:
    ext = common.ExtensionDatas([{"extn_id": "1.2.3.4", "extn_value": b"v"}])
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = v4.TBSSign(
        {
            "version": 4,
            "eseal": v4.SESeal.load(seal),
            "time_info": NOW,
            "data_hash": sm3(b"x"),
            "property_info": "x",
            "ext_datas": ext,
            "ext_datas_untagged": ext,
        }
    ).dump()
    signature = v4.SESSignature(
        {
            "to_sign": v4.TBSSign.load(tbs),
            "cert": signer.cert,
            "signature_alg_id": _alg(False),
            "signature": signer.key.sign(tbs),
        }
    ).dump()
    with pytest.raises(MalformedASN1, match="twice"):
        parse_signature(signature)


def test_six_element_signature_is_unknown(maker: Identity, signer: Identity) -> None:
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = build_tbs_sign(seal=seal, time_info=NOW, data_hash=sm3(b"x"), property_info="x")
    signature = v4.SESSignature(
        {
            "to_sign": v4.TBSSign.load(tbs),
            "cert": signer.cert,
            "signature_alg_id": _alg(False),
            "signature": signer.key.sign(tbs),
            "time_stamp": b"\x01",
            "time_stamp_untagged": b"\x02",
        }
    ).dump()
    with pytest.raises(UnsupportedSealVersion, match="6 elements"):
        parse_signature(signature)


def test_v4_seal_with_a_fifth_element_is_malformed() -> None:
    data = vector("UserV4.esl")
    extra = b"\xa0\x03\x03\x01\x00"
    body = data[4:] + extra
    with pytest.raises(MalformedASN1, match="4 elements"):
        parse_seal(b"\x30\x82" + len(body).to_bytes(2, "big") + body)


def test_unexpected_trailing_element_inside_a_structure_is_malformed(maker: Identity) -> None:
    info = seal_info([maker.cert])
    assert info[:2] == b"\x30\x82" and info[4] == 0x30  # SES_SealInfo > SES_Header
    header_content = info[6 : 6 + info[5]]
    header = b"\x30" + bytes([len(header_content) + 3]) + header_content + b"\x02\x01\x07"
    body = header + info[6 + info[5] :]
    extended = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    with pytest.raises(MalformedASN1, match="elements its definition lacks"):
        parse_seal(build_seal_like(extended, maker))


# --- v1 variations -------------------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def v1_seal(
    maker: Identity, signers: list[bytes], *, generalized: bool, ext: bytes | None
) -> bytes:
    kind = "generalized_time" if generalized else "utc_time"
    value: dict[str, object] = {
        "header": {"id": "ES", "version": 1, "vid": "TRUSTTEST"},
        "es_id": "v1-seal",
        "property": {
            "type": 1,
            "name": "v1 测试章",
            "cert_list": signers,
            "create_date": v1.Time(name=kind, value=NOW - timedelta(days=1)),
            "valid_start": v1.Time(name=kind, value=NOW - timedelta(days=1)),
            "valid_end": v1.Time(name=kind, value=NOW + timedelta(days=1)),
        },
        "picture": {"type": "PNG", "data": b"png", "width": 30, "height": 30},
    }
    info = v1.SESSealInfo(value).dump()
    if ext is not None:  # appended as raw bytes: asn1crypto will not build an arbitrary Any
        body = info[4:] + ext
        info = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    cert = core.OctetString(maker.cert).dump()
    alg = core.ObjectIdentifier(oids.SM3_WITH_SM2).dump()
    signed_range = b"\x30" + _der_length(len(info + cert + alg)) + info + cert + alg
    return v1.SESeal(
        {
            "e_seal_info": v1.SESSealInfo.load(info),
            "sign_info": {
                "cert": maker.cert,
                "signature_algorithm": _alg(False),
                "sign_data": maker.key.sign(signed_range),
            },
        }
    ).dump()


def v1_signature(
    maker: Identity, signer: Identity, *, time_info: bytes, octets: bool, **seal_options: object
) -> bytes:
    kind = "octet_string" if octets else "bit_string"
    seal = v1_seal(maker, [signer.cert], **seal_options)  # type: ignore[arg-type]
    tbs = v1.TBSSign(
        {
            "version": 1,
            "eseal": v1.SESeal.load(seal),
            "time_info": v1.BitsOrOctets(name=kind, value=time_info),
            "data_hash": v1.BitsOrOctets(name=kind, value=sm3(b"original")),
            "property_info": "/Doc_0/Signs/Sign_0/Signature.xml",
            "cert": signer.cert,
            "signature_algorithm": _alg(False),
        }
    ).dump()
    return v1.SESSignature(
        {"to_sign": v1.TBSSign.load(tbs), "signature": signer.key.sign(tbs)}
    ).dump()


VALID_V1_EXT = b"\x30\x0b\x30\x09\x06\x03\x2a\x03\x04\x04\x02hi"


@pytest.mark.parametrize(
    ("generalized", "octets", "ext", "expected_deviations"),
    [
        (False, False, None, 0),
        (True, False, None, 3),  # three GeneralizedTimes
        (False, True, None, 2),  # timeInfo and dataHash as OCTET STRING
        (False, False, VALID_V1_EXT, 0),
        (False, False, b"\xa0" + bytes([len(VALID_V1_EXT)]) + VALID_V1_EXT, 0),
        (False, False, b"\x30\x03\x02\x01\x01", 1),  # not ExtensionDatas: ignored
        (False, False, b"\x04\x01\x00", 1),
    ],
)
def test_v1_signature_variations(
    maker: Identity,
    signer: Identity,
    generalized: bool,
    octets: bool,
    ext: bytes | None,
    expected_deviations: int,
) -> None:
    # "yyyy-MM-dd HH:mm:ss" in producer local time (CST): 16:00 CST is NOW (08:00 UTC).
    data = v1_signature(
        maker,
        signer,
        time_info=b"2025-06-01 16:00:00",
        octets=octets,
        generalized=generalized,
        ext=ext,
    )
    parsed = parse_signature(data)
    assert parsed.version is SealVersion.V1
    assert parsed.signing_time == NOW
    assert parsed.signer_cert == signer.cert
    assert len(parsed.deviations + parsed.seal.deviations) == expected_deviations
    if ext == VALID_V1_EXT:
        assert parsed.seal.info.extensions[0].value == b"hi"
    result = verify_signature(data, original=b"original")
    for check in (
        CheckName.SIGNER_SIGNATURE,
        CheckName.SIGNER_IN_SEAL,
        CheckName.SEAL_MAKER_SIGNATURE,
        CheckName.SEAL_VALIDITY,
        CheckName.DATA_HASH,
    ):
        assert result.check(check).status is CheckStatus.PASSED, result.check(check).message


def test_v1_time_info_token_is_not_a_time(maker: Identity, signer: Identity) -> None:
    data = v1_signature(
        maker, signer, time_info=b"\x30\x03\x02\x01\x01", octets=False, generalized=False, ext=None
    )
    assert parse_signature(data).signing_time is None
    check = verify_signature(data).check(CheckName.SEAL_VALIDITY)
    assert check.status is CheckStatus.NOT_CHECKED


# --- fuzzing -------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = [(name, parse_seal) for name in SEALS] + [(name, parse_signature) for name in SIGNATURES]


def _parses_or_refuses(parse, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(*PARSE_ERRORS):
        parse(data)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parses_or_refuses(parse_seal, data)
    _parses_or_refuses(parse_signature, data)
    _parses_or_refuses(parse_seal, b"\x30" + _der_length(len(data)) + data)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_truncations(sample, data) -> None:  # type: ignore[no-untyped-def]
    name, parse = sample
    blob = vector(name)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(PARSE_ERRORS):
        parse(blob[:cut])


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_bit_flips(sample, data) -> None:  # type: ignore[no-untyped-def]
    name, parse = sample
    blob = bytearray(vector(name))
    # Mostly in the structure before the picture, where flips reach the most code.
    limit = data.draw(st.sampled_from([min(len(blob), 800), len(blob)]))
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, limit * 8 - 1))
        blob[bit // 8] ^= 1 << (bit % 8)
    _parses_or_refuses(parse, bytes(blob))


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_verify_never_raises(sample, data) -> None:  # type: ignore[no-untyped-def]
    name, parse = sample
    blob = bytearray(vector(name))
    bit = data.draw(st.integers(0, min(len(blob), 800) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    verify = verify_seal if parse is parse_seal else verify_signature
    result = verify(bytes(blob))
    assert result.checks[0].name is CheckName.FORMAT
