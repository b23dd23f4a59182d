"""The v4 builder, checked without the code under test: a tiny TLV reader written here walks
the DER field by field against GB/T 38540 (standards.md §1.1), and the signatures are
verified with the pure-Python gmssl backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from seals.build import build_seal, build_seal_info, build_signature, build_tbs_sign
from seals.parse import CertDigest, ExtensionData
from tests.seals_helpers import NOW, Identity, identity, seal_info, vector
from trust.errors import InvalidLength, InvalidSignatureEncoding, ValidationFailed
from trust.sm2.select import get_backend
from trust.sm3 import sm3

SM3_WITH_SM2_DER = bytes.fromhex("2a811ccf55018375")  # 1.2.156.10197.1.501


@dataclass(frozen=True)
class TLV:
    tag: int
    content: bytes
    encoding: bytes  # the whole element


def read_tlv(data: bytes, pos: int = 0) -> tuple[TLV, int]:
    """One DER element at ``pos`` (single-byte tags, minimal definite lengths), and the
    position after it."""
    tag = data[pos]
    assert tag & 0x1F != 0x1F, "multi-byte tags are not used in seals"
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        assert 1 <= count <= 4
        length = int.from_bytes(data[start : start + count], "big")
        assert length >= 0x80 and data[start] != 0, "DER lengths are minimal"
        start += count
    end = start + length
    assert end <= len(data)
    return TLV(tag, data[start:end], data[pos:end]), end


def read_all(data: bytes) -> list[TLV]:
    items, pos = [], 0
    while pos < len(data):
        item, pos = read_tlv(data, pos)
        items.append(item)
    return items


def read_one(data: bytes) -> TLV:
    item, end = read_tlv(data)
    assert end == len(data)
    return item


def tags(items: list[TLV]) -> list[int]:
    return [i.tag for i in items]


def der_integer(value: TLV) -> int:
    assert value.tag == 0x02
    return int.from_bytes(value.content, "big", signed=True)


def pure_verify(identity_: Identity, signature: bytes, message: bytes) -> None:
    """Raises InvalidSignature unless gmssl (not OpenSSL) accepts the signature."""
    pure = get_backend("pure")
    pure.load_public(identity_.key.public_key().point()).verify(message, signature)


@pytest.fixture(scope="module")
def maker() -> Identity:
    return identity("Seal Maker CA")


@pytest.fixture(scope="module")
def signer() -> Identity:
    return identity("Signer")


def walk_seal(seal: bytes, maker: Identity, signer_certs: list[bytes]) -> TLV:
    """Check an SESeal field by field; return its SES_SealInfo."""
    outer = read_one(seal)
    assert outer.tag == 0x30
    info, cert, alg, signed_value = read_all(outer.content)
    assert tags([info, cert, alg, signed_value]) == [0x30, 0x04, 0x06, 0x03]
    header, es_id, prop, picture = read_all(info.content)  # no extDatas given
    assert tags([header, es_id, prop, picture]) == [0x30, 0x16, 0x30, 0x30]
    h_id, h_version, h_vid = read_all(header.content)
    assert (h_id.tag, h_id.content) == (0x16, b"ES")
    assert der_integer(h_version) == 4
    assert (h_vid.tag, h_vid.content) == (0x16, b"TRUSTTEST")
    assert es_id.content == b"11010000000001"
    p_type, p_name, p_list_type, p_list, created, start, end = read_all(prop.content)
    assert tags([p_type, p_name, p_list_type, p_list]) == [0x02, 0x0C, 0x02, 0x30]
    assert p_name.content.decode("utf-8") == "测试专用章"
    assert der_integer(p_list_type) == 1
    assert [c.content for c in read_all(p_list.content) if c.tag == 0x04] == signer_certs
    for when, expected in ((created, NOW - timedelta(days=30)), (end, NOW + timedelta(days=30))):
        assert when.tag == 0x18  # GeneralizedTime
        assert when.content == expected.strftime("%Y%m%d%H%M%SZ").encode()
    assert start.content == created.content
    pic_type, pic_data, width, height = read_all(picture.content)
    assert (pic_type.content, der_integer(width), der_integer(height)) == (b"PNG", 40, 40)
    assert pic_data.tag == 0x04
    assert cert.content == maker.cert
    assert alg.content == SM3_WITH_SM2_DER
    assert signed_value.content[0] == 0  # no unused bits
    pure_verify(maker, signed_value.content[1:], info.encoding)  # over DER(SES_SealInfo)
    return info


def test_seal_read_independently_and_verified_with_gmssl(maker: Identity, signer: Identity) -> None:
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    walk_seal(seal, maker, [signer.cert])


@pytest.mark.parametrize("with_timestamp", [False, True])
def test_signature_read_independently_and_verified_with_gmssl(
    maker: Identity, signer: Identity, with_timestamp: bool
) -> None:
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = build_tbs_sign(
        seal=seal,
        time_info=NOW,
        data_hash=sm3(b"Signature.xml bytes"),
        property_info="/Doc_0/Signs/Sign_0/Signature.xml",
        extensions=[ExtensionData("1.2.156.1", b"ext", critical=False)],
    )
    stamped: list[bytes] = []

    def stamp(value: bytes) -> bytes:
        stamped.append(value)
        return b"token:" + sm3(value)

    signature = build_signature(
        tbs, signer.cert, signer.key.sign, stamp if with_timestamp else None
    )

    outer = read_one(signature)
    fields = read_all(outer.content)
    assert tags(fields) == [0x30, 0x04, 0x06, 0x03] + ([0xA0] if with_timestamp else [])
    to_sign, cert, alg, value = fields[:4]
    version, eseal, time_info, data_hash, prop_info, ext = read_all(to_sign.content)
    assert der_integer(version) == 4
    assert eseal.encoding == seal  # embedded unchanged
    walk_seal(eseal.encoding, maker, [signer.cert])
    assert (time_info.tag, time_info.content) == (0x18, NOW.strftime("%Y%m%d%H%M%SZ").encode())
    assert (data_hash.tag, data_hash.content) == (0x03, b"\x00" + sm3(b"Signature.xml bytes"))
    assert (prop_info.tag, prop_info.content) == (0x16, b"/Doc_0/Signs/Sign_0/Signature.xml")
    assert ext.tag == 0xA0  # [0] EXPLICIT ExtensionDatas
    (ext_list,) = read_all(ext.content)
    (ext_data,) = read_all(ext_list.content)
    oid, ext_value = read_all(ext_data.content)  # critical FALSE is DEFAULT: omitted in DER
    assert (oid.tag, ext_value.content) == (0x06, b"ext")
    assert cert.content == signer.cert
    assert alg.content == SM3_WITH_SM2_DER
    assert value.content[0] == 0
    pure_verify(signer, value.content[1:], to_sign.encoding)  # over DER(TBS_Sign)
    if with_timestamp:
        (token,) = read_all(fields[4].content)
        assert stamped == [value.content[1:]]  # the stamper saw the signature value
        assert (token.tag, token.content) == (0x03, b"\x00token:" + sm3(stamped[0]))


def test_digest_cert_list(maker: Identity, signer: Identity) -> None:
    info = seal_info(digests=[CertDigest("SM3", sm3(signer.cert))])
    prop = read_all(read_one(info).content)[2]
    _, _, list_type, cert_list, *_ = read_all(prop.content)
    assert der_integer(list_type) == 2
    (entry,) = read_all(cert_list.content)
    name, digest = read_all(entry.content)
    assert (name.tag, name.content) == (0x13, b"SM3")  # PrintableString
    assert (digest.tag, digest.content) == (0x04, sm3(signer.cert))


def test_builder_refuses_bad_parts(maker: Identity, signer: Identity) -> None:
    with pytest.raises(ValidationFailed):
        seal_info()  # neither certificates nor digests
    with pytest.raises(ValidationFailed):
        seal_info([signer.cert], [CertDigest("SM3", bytes(32))])
    with pytest.raises(ValidationFailed):
        seal_info([signer.cert], valid_start=NOW, valid_end=NOW - timedelta(seconds=1))
    with pytest.raises(ValidationFailed):
        seal_info([signer.cert], valid_start=NOW.replace(tzinfo=None))
    with pytest.raises(ValidationFailed):
        build_seal_info(
            es_id="非ASCII",
            vendor_id="V",
            seal_type=1,
            name="n",
            certificates=[b"c"],
            create_date=NOW,
            valid_start=NOW,
            valid_end=NOW,
            picture_type="PNG",
            picture=b"p",
            picture_width=1,
            picture_height=1,
        )
    with pytest.raises(ValidationFailed):
        build_seal(vector("UserV4.esl"), maker.cert, maker.key.sign)  # not an SES_SealInfo
    with pytest.raises(InvalidSignatureEncoding):
        build_seal(seal_info([signer.cert]), maker.cert, lambda data: b"raw r||s")
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)
    with pytest.raises(InvalidLength):
        build_tbs_sign(seal=seal, time_info=NOW, data_hash=b"short", property_info="x")
    for foreign in ("UserV5.esl", "SESealData.DER"):  # a v5 seal; a non-DER vendor seal
        with pytest.raises(ValidationFailed):
            build_tbs_sign(
                seal=vector(foreign), time_info=NOW, data_hash=bytes(32), property_info="x"
            )
    with pytest.raises(ValidationFailed):
        build_signature(vector("UserV4.esl"), signer.cert, signer.key.sign)
