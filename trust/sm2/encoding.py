"""SM2 wire forms: DER signatures <-> raw r||s, GM/T 0009 SM2Cipher <-> raw C1C3C2 / C1C2C3.

Parsing is strict DER: the input must re-encode to exactly the same bytes, so
non-minimal integers, long-form lengths, BER constructions and trailing bytes
are all refused. A signature encoding has one canonical form, which keeps
signatures non-malleable at the byte level.
"""

from __future__ import annotations

from enum import StrEnum

from asn1crypto import core

from trust.errors import InvalidLength, InvalidSignatureEncoding, MalformedASN1, MalformedEncoding
from trust.sm2.curve import FIELD_BYTES, N

RAW_SIGNATURE_BYTES = 2 * FIELD_BYTES
C3_BYTES = 32


class _SM2Signature(core.Sequence):
    _fields = [("r", core.Integer), ("s", core.Integer)]


class _SM2Cipher(core.Sequence):
    _fields = [
        ("x", core.Integer),
        ("y", core.Integer),
        ("hash", core.OctetString),
        ("ciphertext", core.OctetString),
    ]


class CipherOrder(StrEnum):
    C1C3C2 = "c1c3c2"  # GB/T 32918.4-2016, same order as SM2Cipher
    C1C2C3 = "c1c2c3"  # 2010 draft, older CFCA SADK


def _load_strict(spec: type[core.Sequence], data: bytes) -> core.Sequence | None:
    """Parse DER and insist it re-encodes byte for byte; None if it does not."""
    try:
        value = spec.load(data, strict=True)
        _ = value.native  # forces parsing of every field
        if value.dump(force=True) != data:
            return None
    # asn1crypto signals bad input with a variety of built-in exceptions
    # (ValueError, TypeError, OverflowError, ...); all of them mean "not DER".
    except Exception:
        return None
    return value


def _der_positive_int(data: bytes, pos: int) -> tuple[int, int]:
    """Strict DER INTEGER at ``pos`` of at most 33 bytes (r, s < n < 2^256): (value, next pos)."""
    if pos + 2 > len(data) or data[pos] != 0x02:
        raise ValueError
    length = data[pos + 1]
    body = data[pos + 2 : pos + 2 + length]
    if not 1 <= length <= FIELD_BYTES + 1 or len(body) != length:
        raise ValueError
    if body[0] & 0x80 or (length > 1 and body[0] == 0 and not body[1] & 0x80):
        raise ValueError  # negative, or a redundant leading zero byte
    return int.from_bytes(body, "big"), pos + 2 + length


def der_to_raw(signature: bytes) -> bytes:
    """DER SEQUENCE{r, s} -> 64-byte r||s; r, s in [1, n-1] or InvalidSignatureEncoding.

    Parsed by hand rather than with asn1crypto: it runs on every verification and
    asn1crypto costs about a tenth of an OpenSSL verify. The tests check it
    against asn1crypto's parse-and-re-encode on generated encodings.
    """
    try:
        # Both INTEGERs fit in 35 bytes each, so the DER SEQUENCE length is short form.
        if len(signature) < 2 or signature[0] != 0x30 or signature[1] >= 0x80:
            raise ValueError
        if signature[1] != len(signature) - 2:
            raise ValueError
        r, pos = _der_positive_int(signature, 2)
        s, pos = _der_positive_int(signature, pos)
        if pos != len(signature):
            raise ValueError
    except ValueError:
        raise InvalidSignatureEncoding("SM2 signature is not a DER SEQUENCE { r, s }") from None
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignatureEncoding("SM2 signature r or s out of range [1, n-1]")
    return r.to_bytes(FIELD_BYTES, "big") + s.to_bytes(FIELD_BYTES, "big")


def raw_to_der(raw: bytes) -> bytes:
    """64-byte r||s -> DER SEQUENCE{r, s}; r, s in [1, n-1] or InvalidSignatureEncoding."""
    if len(raw) != RAW_SIGNATURE_BYTES:
        raise InvalidSignatureEncoding("raw SM2 signature must be 64 bytes r||s")
    r = int.from_bytes(raw[:FIELD_BYTES], "big")
    s = int.from_bytes(raw[FIELD_BYTES:], "big")
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignatureEncoding("SM2 signature r or s out of range [1, n-1]")
    return encode_signature(r, s)


def encode_signature(r: int, s: int) -> bytes:
    """DER SEQUENCE{r, s} from integers the caller has already range-checked."""
    return bytes(_SM2Signature({"r": r, "s": s}).dump())


def parse_cipher(der: bytes) -> tuple[int, int, bytes, bytes]:
    """GM/T 0009 SM2Cipher DER -> (x1, y1, C3, C2). Only the structure is checked here."""
    parsed = _load_strict(_SM2Cipher, der)
    if parsed is None:
        raise MalformedASN1("SM2 ciphertext is not a DER SM2Cipher")
    x: int = parsed["x"].native
    y: int = parsed["y"].native
    c3: bytes = parsed["hash"].native
    c2: bytes = parsed["ciphertext"].native
    limit = 1 << (8 * FIELD_BYTES)
    if not (0 <= x < limit and 0 <= y < limit) or len(c3) != C3_BYTES or not c2:
        raise MalformedASN1("SM2Cipher fields out of range")
    return x, y, c3, c2


def encode_cipher(x: int, y: int, c3: bytes, c2: bytes) -> bytes:
    return bytes(_SM2Cipher({"x": x, "y": y, "hash": c3, "ciphertext": c2}).dump())


def cipher_der_to_raw(
    der: bytes, order: CipherOrder = CipherOrder.C1C3C2, prefixed: bool = True
) -> bytes:
    """SM2Cipher DER -> raw C1||C3||C2 or C1||C2||C3; C1 is 04||x||y or x||y."""
    x, y, c3, c2 = parse_cipher(der)
    c1 = (
        (b"\x04" if prefixed else b"")
        + x.to_bytes(FIELD_BYTES, "big")
        + y.to_bytes(FIELD_BYTES, "big")
    )
    return c1 + (c3 + c2 if order is CipherOrder.C1C3C2 else c2 + c3)


def raw_to_cipher_der(
    raw: bytes, order: CipherOrder = CipherOrder.C1C3C2, prefixed: bool = True
) -> bytes:
    """Raw C1C3C2 / C1C2C3 -> SM2Cipher DER. The layout cannot be detected, so it is a parameter."""
    c1_len = 2 * FIELD_BYTES + (1 if prefixed else 0)
    if len(raw) <= c1_len + C3_BYTES:
        raise InvalidLength("raw SM2 ciphertext too short")
    if prefixed and raw[0] != 0x04:
        raise MalformedEncoding("raw SM2 ciphertext C1 does not start with 04")
    c1, rest = raw[c1_len - 2 * FIELD_BYTES : c1_len], raw[c1_len:]
    if order is CipherOrder.C1C3C2:
        c3, c2 = rest[:C3_BYTES], rest[C3_BYTES:]
    else:
        c2, c3 = rest[:-C3_BYTES], rest[-C3_BYTES:]
    x = int.from_bytes(c1[:FIELD_BYTES], "big")
    y = int.from_bytes(c1[FIELD_BYTES:], "big")
    return encode_cipher(x, y, c3, c2)
