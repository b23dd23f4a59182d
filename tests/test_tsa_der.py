"""The TSA's hand-written DER: the one-pass TimeStampReq reader never accepts what the
asn1crypto reader refuses and reads what it accepts the same way; the written pieces
are byte for byte asn1crypto's."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms, core, tsp

from tests.tsa_support import request
from timestamp import der, protocol
from trust.errors import TrustError

VALID = [
    request(b"doc", algorithm, nonce=nonce, cert_req=cert_req, policy=policy)
    for algorithm in ("sm3", "sha256", "sha384", "sha512")
    for nonce in (None, 0, 1, -1, 127, 128, -129, 0x1234567890ABCDEF, 1 << 70)
    for cert_req in (True, False)
    for policy in (None, "1.2.156.112233.3.1", "2.999.1.1")
]


def test_plain_requests_read_in_one_pass_as_asn1crypto_reads_them() -> None:
    for data in VALID:
        plain = protocol._parse_plain(data)
        assert plain is not None
        assert plain == protocol._parse_any(data)


def test_sha2_imprint_with_null_parameters_is_echoed_as_sent() -> None:
    data = request(b"doc", "sha256")  # asn1crypto writes NULL parameters for SHA-2
    plain = protocol._parse_plain(data)
    assert plain is not None and b"\x05\x00" in plain.message_imprint
    assert plain.message_imprint == tsp.TimeStampReq.load(data)["message_imprint"].dump()


def _content(data: bytes) -> bytes:
    found = der.read(data, 0, len(data))
    assert found is not None
    return data[found[1] : found[2]]


_SHORT = request(b"doc", "sm3", nonce=None, cert_req=False)


@pytest.mark.parametrize(
    "data",
    [
        # certReq FALSE written out (DER leaves the DEFAULT out)
        der.tlv(der.SEQUENCE, _content(_SHORT) + b"\x01\x01\x00"),
        # certReq TRUE as 0x01 (DER writes 0xFF)
        der.tlv(der.SEQUENCE, _content(_SHORT) + b"\x01\x01\x01"),
        # a long-form length where the short form fits
        b"\x30\x81" + bytes([len(_content(_SHORT))]) + _content(_SHORT),
        # a nonce not in minimal form
        der.tlv(der.SEQUENCE, _content(_SHORT) + b"\x02\x02\x00\x01"),
        # extensions
        request(b"doc", "sm3", extensions=[{"extn_id": "1.2.3.4", "extn_value": b"x"}]),
        # version 2
        request(b"doc", "sm3", version=2),
        # an unknown digest, and a digest of the wrong size
        request(b"doc", "sm3", hash_oid="1.2.840.113549.2.5", hashed=bytes(16)),
        request(b"doc", "sm3", hashed=bytes(31)),
        # trailing bytes
        request(b"doc", "sm3") + b"\x00",
    ],
)
def test_anything_else_is_left_to_asn1crypto(data: bytes) -> None:
    assert protocol._parse_plain(data) is None
    try:
        protocol.parse_request(data)
    except TrustError as exc:
        assert exc.extra["failure_info"]


def test_ber_forms_asn1crypto_accepts_still_work() -> None:
    explicit_false = der.tlv(der.SEQUENCE, _content(_SHORT) + b"\x01\x01\x00")
    long_form = b"\x30\x81" + bytes([len(_content(_SHORT))]) + _content(_SHORT)
    for data in (explicit_false, long_form):
        parsed = protocol.parse_request(data)
        assert parsed == protocol._parse_plain(_SHORT)


def test_mutated_requests_are_never_read_differently() -> None:
    rng = random.Random(3161)
    checked = accepted = 0
    for _ in range(4000):
        data = bytearray(rng.choice(VALID))
        for _ in range(rng.randint(1, 3)):
            if not data:
                break
            kind = rng.randrange(4)
            at = rng.randrange(len(data))
            if kind == 0:
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at:]
            elif kind == 2:
                data.insert(at, rng.randrange(256))
            else:
                data[at] ^= 1 << rng.randrange(8)
        mutated = bytes(data)
        plain = protocol._parse_plain(mutated)
        try:
            general: protocol.TimestampRequest | None = protocol._parse_any(mutated)
        except TrustError:
            general = None
        if plain is not None:
            accepted += 1
            assert plain == general, mutated.hex()
        checked += 1
    assert checked == 4000 and accepted > 50  # some mutations stay valid (digest bytes)


@pytest.mark.parametrize("value", [0, 1, -1, 127, 128, 255, 256, -128, -129, 1 << 126, -(1 << 70)])
def test_integer_as_asn1crypto(value: int) -> None:
    assert der.integer(value) == core.Integer(value).dump()
    assert der.read_integer(der.integer(value), 2, len(der.integer(value))) == value


def test_generalized_time_as_asn1crypto() -> None:
    rng = random.Random(5)
    base = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    for micro in (0, 1, 10, 100000, 120000, 999999, *(rng.randrange(10**6) for _ in range(50))):
        when = base + timedelta(microseconds=micro)
        assert der.generalized_time(when) == core.GeneralizedTime(when).dump()


def test_long_lengths_as_asn1crypto() -> None:
    for size in (0, 1, 127, 128, 255, 256, 65535, 70000):
        assert der.tlv(der.OCTET_STRING, bytes(size)) == core.OctetString(bytes(size)).dump()


def test_granted_response_as_asn1crypto() -> None:
    token = cms.ContentInfo({"content_type": "data", "content": b"x" * 300}).dump()
    expected = protocol.TimeStampResp(
        {"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)}
    ).dump()
    assert protocol.granted(token) == expected
