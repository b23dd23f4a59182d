"""Strict DER <-> raw forms for SM2 signatures and GM/T 0009 SM2Cipher."""

from __future__ import annotations

import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from trust.errors import InvalidLength, InvalidSignatureEncoding, MalformedASN1, MalformedEncoding
from trust.sm2.curve import N
from trust.sm2.encoding import (
    CipherOrder,
    cipher_der_to_raw,
    der_to_raw,
    encode_cipher,
    parse_cipher,
    raw_to_cipher_der,
    raw_to_der,
)

GMSM_SIG = bytes.fromhex(
    "304402205b3a799bd94c9063120d7286769220af6b0fa127009af3e873c0e8742edc5f89"
    "0220097968a4c8b040fd548d1456b33f470cabd8456bfea53e8a828f92f6d4bdcd77"
)
scalars = st.integers(min_value=1, max_value=N - 1)


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big", signed=False)  # minimal, sign bit clear
    return b"\x02" + bytes([len(body)]) + body


def _seq(body: bytes) -> bytes:
    return b"\x30" + bytes([len(body)]) + body


def test_known_signature_round_trip() -> None:
    raw = der_to_raw(GMSM_SIG)
    assert raw.hex().startswith("5b3a799bd94c")
    assert raw_to_der(raw) == GMSM_SIG


@given(scalars, scalars)
def test_signature_round_trip(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der = raw_to_der(raw)
    assert der == _seq(_der_int(r) + _der_int(s))
    assert der_to_raw(der) == raw


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x00",
        GMSM_SIG + b"\x00",  # trailing byte
        GMSM_SIG[:-1],  # truncated
        b"\x30\x81\x44" + GMSM_SIG[2:],  # long-form length
        _seq(b"\x02\x02\x00\x01" + _der_int(1)),  # non-minimal INTEGER
        _seq(b"\x02\x01\xff" + _der_int(1)),  # negative r
        _seq(_der_int(1)),  # one INTEGER
        _seq(_der_int(1) + _der_int(1) + _der_int(1)),  # three INTEGERs
        b"\x31" + GMSM_SIG[1:],  # SET instead of SEQUENCE
        _seq(b"\x04\x01\x01" + _der_int(1)),  # OCTET STRING instead of INTEGER
        b"\x30\x80" + _der_int(1) + _der_int(1) + b"\x00\x00",  # BER indefinite length
        _seq(_der_int(0) + _der_int(1)),  # r = 0
        _seq(_der_int(1) + _der_int(0)),  # s = 0
        _seq(_der_int(N) + _der_int(1)),  # r = n
        _seq(_der_int(1) + _der_int(N)),  # s = n
        _seq(_der_int(1) + _der_int(2**256)),  # s too wide
    ],
)
def test_der_to_raw_rejects(der: bytes) -> None:
    with pytest.raises(InvalidSignatureEncoding):
        der_to_raw(der)


@given(st.binary(max_size=80))
def test_der_to_raw_never_raises_anything_else(data: bytes) -> None:
    try:
        raw = der_to_raw(data)
    except InvalidSignatureEncoding:
        return
    assert raw_to_der(raw) == data


class _Asn1Signature(core.Sequence):
    _fields = [("r", core.Integer), ("s", core.Integer)]


def _asn1crypto_strict(data: bytes) -> bytes | None:
    """Oracle for der_to_raw: asn1crypto parse that re-encodes to the same bytes, range-checked."""
    try:
        value = _Asn1Signature.load(data, strict=True)
        r, s = value["r"].native, value["s"].native
        if value.dump(force=True) != data:
            return None
    except Exception:
        return None
    if not (1 <= r < N and 1 <= s < N):
        return None
    return bytes(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _length(n: int, long_form: bool) -> bytes:
    if not long_form:
        return bytes([n]) if n < 0x80 else b"\x81" + bytes([n])
    return b"\x81" + bytes([n])


@st.composite
def der_like(draw: st.DrawFn) -> bytes:
    """Encodings close to a DER signature: the mutations strictness must catch."""
    parts = []
    # Weighted so that about half the encodings are valid and half carry one mutation.
    for _ in range(draw(st.sampled_from([2] * 12 + [0, 1, 3]))):
        value = draw(
            st.one_of(scalars, scalars, scalars, st.integers(min_value=-5, max_value=5), st.just(N))
        )
        body = value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True)
        body = b"\x00" * draw(st.sampled_from([0] * 12 + [1, 2])) + body
        tag = draw(st.sampled_from([b"\x02"] * 12 + [b"\x04", b"\x0a"]))
        parts.append(tag + _length(len(body), draw(st.sampled_from([False] * 12 + [True]))) + body)
    inner = b"".join(parts)
    seq = draw(st.sampled_from([b"\x30"] * 12 + [b"\x31"]))
    out = seq + _length(len(inner), draw(st.sampled_from([False] * 12 + [True]))) + inner
    return out + draw(st.sampled_from([b""] * 12 + [b"\x00"]))


@settings(max_examples=300)
@given(st.one_of(der_like(), st.binary(max_size=80)))
def test_der_to_raw_agrees_with_asn1crypto(data: bytes) -> None:
    expected = _asn1crypto_strict(data)
    if expected is None:
        with pytest.raises(InvalidSignatureEncoding):
            der_to_raw(data)
    else:
        assert der_to_raw(data) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01" * 63,
        b"\x01" * 65,
        b"\x00" * 32 + b"\x01" * 32,
        b"\x01" * 32 + b"\x00" * 32,
        N.to_bytes(32, "big") + b"\x01" * 32,
        b"\x01" * 32 + b"\xff" * 32,
    ],
)
def test_raw_to_der_rejects(raw: bytes) -> None:
    with pytest.raises(InvalidSignatureEncoding):
        raw_to_der(raw)


@given(
    x=st.integers(min_value=0, max_value=2**256 - 1),
    y=st.integers(min_value=0, max_value=2**256 - 1),
    c3=st.binary(min_size=32, max_size=32),
    c2=st.binary(min_size=1, max_size=100),
)
def test_cipher_conversions_round_trip(x: int, y: int, c3: bytes, c2: bytes) -> None:
    der = encode_cipher(x, y, c3, c2)
    assert parse_cipher(der) == (x, y, c3, c2)
    c1 = x.to_bytes(32, "big") + y.to_bytes(32, "big")
    expected = {
        (CipherOrder.C1C3C2, True): b"\x04" + c1 + c3 + c2,
        (CipherOrder.C1C3C2, False): c1 + c3 + c2,
        (CipherOrder.C1C2C3, True): b"\x04" + c1 + c2 + c3,
        (CipherOrder.C1C2C3, False): c1 + c2 + c3,
    }
    for (order, prefixed), raw in expected.items():
        assert cipher_der_to_raw(der, order, prefixed) == raw
        assert raw_to_cipher_der(raw, order, prefixed) == der


def test_cipher_der_rejects_bad_structures() -> None:
    good = encode_cipher(1, 2, b"\x33" * 32, b"\x44")
    bad = [
        good + b"\x00",
        good[:-1],
        encode_cipher(1, 2, b"\x33" * 31, b"\x44"),  # C3 not 32 bytes
        encode_cipher(1, 2, b"\x33" * 32, b""),  # empty C2
        encode_cipher(-1, 2, b"\x33" * 32, b"\x44"),  # negative x
        encode_cipher(1, 2**256, b"\x33" * 32, b"\x44"),  # y wider than a field element
        _seq(_der_int(1) + _der_int(2) + b"\x04\x20" + b"\x33" * 32),  # three fields
    ]
    for der in bad:
        with pytest.raises(MalformedASN1):
            parse_cipher(der)


def test_raw_cipher_rejects_short_and_bad_prefix() -> None:
    with pytest.raises(InvalidLength):
        raw_to_cipher_der(b"\x04" + b"\x01" * 96, CipherOrder.C1C3C2, True)
    with pytest.raises(InvalidLength):
        raw_to_cipher_der(b"\x01" * 96, CipherOrder.C1C2C3, False)
    with pytest.raises(MalformedEncoding):
        raw_to_cipher_der(b"\x02" + b"\x01" * 97, CipherOrder.C1C3C2, True)


@given(st.binary(max_size=200))
def test_parse_cipher_never_raises_anything_else(data: bytes) -> None:
    try:
        x, y, c3, c2 = parse_cipher(data)
    except MalformedASN1:
        return
    assert encode_cipher(x, y, c3, c2) == data
