"""The few DER encodings issuance assembles by hand.

asn1crypto re-encodes every nested value it builds at each level (the profile of one
issuance spent two thirds of its time there), so a certificate is put together from DER
parts instead: the parts that never change for a CA and profile are encoded once with
asn1crypto and kept; serial, validity, names, key and SKI are joined here.
"""

from __future__ import annotations

from datetime import UTC, datetime

_UTC_TIME_LIMIT = datetime(2050, 1, 1, tzinfo=UTC)


def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    """A non-negative INTEGER, minimally encoded (a leading 00 only before a high bit)."""
    if value < 0:
        raise ValueError("only non-negative integers are encoded here")
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octet_string(data: bytes) -> bytes:
    return tlv(0x04, data)


def bit_string(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 | number, content)


def time(when: datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds."""
    when = when.astimezone(UTC)
    if when < _UTC_TIME_LIMIT:
        return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode("ascii"))
