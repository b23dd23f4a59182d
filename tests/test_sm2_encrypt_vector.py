"""The GM/T 0003.4 annex encryption example, recomputed with reference arithmetic and KDF.

The example uses the GM/T 0003.2 test curve, which no backend supports, so it
checks the construction (KDF, C3, field order) and the SM2Cipher / raw
encodings byte for byte; the backends are tied to the same construction by
the cross-implementation tests.
"""

from __future__ import annotations

import json
from pathlib import Path

from trust.sm2.curve import CurveParams, scalar_mult
from trust.sm2.encoding import CipherOrder, cipher_der_to_raw, encode_cipher, raw_to_cipher_der
from trust.sm3 import sm3

V = json.loads((Path(__file__).parent / "vectors" / "sm2_encrypt.json").read_text())
CURVE = CurveParams(**{k: int(x, 16) for k, x in V["curve_params"].items()})


def _kdf(z: bytes, klen: int) -> bytes:
    """GM/T 0003.4 KDF: SM3(Z || ct) for ct = 1, 2, ... (32-bit big-endian), truncated."""
    out = b"".join(sm3(z + ct.to_bytes(4, "big")) for ct in range(1, klen // 32 + 2))
    return out[:klen]


def _reference_encrypt(public: tuple[int, int], message: bytes, k: int) -> bytes:
    c1 = scalar_mult(CURVE, k, (CURVE.gx, CURVE.gy))
    shared = scalar_mult(CURVE, k, public)
    assert c1 is not None and shared is not None
    x2, y2 = (v.to_bytes(32, "big") for v in shared)
    t = _kdf(x2 + y2, len(message))
    c2 = bytes(m ^ b for m, b in zip(message, t, strict=True))
    return encode_cipher(c1[0], c1[1], sm3(x2 + message + y2), c2)


def _reference_decrypt(d: int, der: bytes) -> bytes:
    raw = cipher_der_to_raw(der, CipherOrder.C1C3C2, prefixed=False)
    c1 = (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    c3, c2 = raw[64:96], raw[96:]
    shared = scalar_mult(CURVE, d, c1)
    assert shared is not None
    x2, y2 = (v.to_bytes(32, "big") for v in shared)
    message = bytes(c ^ b for c, b in zip(c2, _kdf(x2 + y2, len(c2)), strict=True))
    assert sm3(x2 + message + y2) == c3
    return message


def test_annex_public_key() -> None:
    public = scalar_mult(CURVE, int(V["d"], 16), (CURVE.gx, CURVE.gy))
    assert public == (int(V["px"], 16), int(V["py"], 16))


def test_annex_encryption_reproduces_sm2cipher_and_raw_forms() -> None:
    public = (int(V["px"], 16), int(V["py"], 16))
    der = _reference_encrypt(public, V["message"].encode(), int(V["k"], 16))
    assert der.hex().upper() == V["sm2cipher_der"]
    assert cipher_der_to_raw(der, CipherOrder.C1C2C3).hex().upper() == V["c1c2c3"]
    assert raw_to_cipher_der(bytes.fromhex(V["c1c2c3"]), CipherOrder.C1C2C3) == der


def test_annex_decryption() -> None:
    der = bytes.fromhex(V["sm2cipher_der"])
    assert _reference_decrypt(int(V["d"], 16), der) == V["message"].encode()
