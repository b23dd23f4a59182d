"""Malformed SignedData ends in MalformedASN1 or a failed result, never another exception,
and in bounded time (hypothesis deadline)."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.certs_helper import make_chain
from trust.cms import KeySigner, build_signed_data, timestamp_token_attribute, verify_signed_data
from trust.errors import MalformedASN1
from trust.keys import KeyAlgorithm

FUZZ = settings(max_examples=300, deadline=2000)


@cache
def samples() -> tuple[bytes, ...]:
    out = []
    for algorithm in (KeyAlgorithm.SM2, KeyAlgorithm.ECDSA_P256):
        root, leaf, key = make_chain(algorithm)
        signer = KeySigner(key, leaf)
        token = build_signed_data(b"inner", signer, extra_certificates=[root])
        out.append(
            build_signed_data(
                b"content",
                signer,
                extra_certificates=[root],
                unsigned_attributes=[timestamp_token_attribute(token)],
            )
        )
    return tuple(out)


def check(data: bytes) -> None:
    try:
        result = verify_signed_data(data, content=b"content")
    except MalformedASN1:
        return
    assert isinstance(result.ok, bool)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.integers(0, 1), st.data())
def test_truncations(which: int, data: st.DataObject) -> None:
    sample = samples()[which]
    cut = data.draw(st.integers(0, len(sample) - 1))
    check(sample[:cut])


@FUZZ
@given(st.integers(0, 1), st.data())
def test_byte_mutations(which: int, data: st.DataObject) -> None:
    sample = bytearray(samples()[which])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(sample) - 1))
        sample[i] = data.draw(st.integers(0, 255))
    check(bytes(sample))


@FUZZ
@given(st.integers(0, 1), st.data())
def test_huge_lengths(which: int, data: st.DataObject) -> None:
    """A length field somewhere replaced by a long form claiming up to 2^64 bytes."""
    sample = samples()[which]
    i = data.draw(st.integers(0, len(sample) - 2))
    size = data.draw(st.integers(1, 8))
    claimed = data.draw(st.integers(0, 2 ** (8 * size) - 1)).to_bytes(size, "big")
    check(sample[: i + 1] + bytes([0x80 | size]) + claimed + sample[i + 2 :])


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + body


def test_deep_nesting() -> None:
    for header in (b"\x30\x80", b"\xa0\x80", b"\x24\x80"):
        check(header * 5000)
    nested = b"\x05\x00"
    for _ in range(2000):
        nested = _tlv(0x30, nested)
    check(nested)
    check(_tlv(0x30, b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" + _tlv(0xA0, nested)))
