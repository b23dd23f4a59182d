"""The few DER pieces the time-stamping hot path reads and writes by hand.

asn1crypto builds an object per field and parses lazily, which costs more per token
than the rest of the TSA's own work. A TimeStampReq in plain DER, which every client
sends, is read here in one pass (``read``); anything else is left to asn1crypto.
TSTInfo fields and the TimeStampResp envelope are written here (tests hold the bytes
equal to asn1crypto's).
"""

from __future__ import annotations

from datetime import UTC, datetime

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
BOOLEAN = 0x01


def tlv(tag: int, content: bytes) -> bytes:
    """A DER element with a one-byte tag."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def integer(value: int) -> bytes:
    """DER INTEGER: minimal two's complement."""
    bits = value.bit_length() if value >= 0 else (~value).bit_length()
    return tlv(INTEGER, value.to_bytes(bits // 8 + 1, "big", signed=True))


def generalized_time(when: datetime) -> bytes:
    """DER GeneralizedTime in UTC; the fraction keeps the microseconds, trailing zeros
    dropped (none when whole), as X.690 requires and asn1crypto writes."""
    when = when.astimezone(UTC)
    text = when.strftime("%Y%m%d%H%M%S")
    if when.microsecond:
        text += "." + f"{when.microsecond:06d}".rstrip("0")
    return tlv(0x18, (text + "Z").encode("ascii"))


def read(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the element at ``pos``, or None unless it is
    a one-byte tag with a minimal definite length (up to 65535) inside ``end``."""
    if pos + 2 > end:
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x81:
        if pos >= end or data[pos] < 0x80:
            return None
        length = data[pos]
        pos += 1
    elif first == 0x82:
        if pos + 2 > end or data[pos] == 0:
            return None
        length = (data[pos] << 8) | data[pos + 1]
        pos += 2
    else:
        return None
    if tag & 0x1F == 0x1F or pos + length > end:
        return None
    return tag, pos, pos + length


def read_integer(data: bytes, start: int, end: int) -> int | None:
    """The value of INTEGER contents in minimal form, else None."""
    if end <= start:
        return None
    if end - start > 1:
        head, next_ = data[start], data[start + 1]
        if (head == 0 and next_ < 0x80) or (head == 0xFF and next_ >= 0x80):
            return None
    return int.from_bytes(data[start:end], "big", signed=True)
