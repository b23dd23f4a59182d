"""SM2 over the pure-Python ``gmssl`` package: the fallback engine and an independent test oracle.

What is taken from gmssl and what is not, and why:

- Signing: gmssl's ``sign_with_sm3`` hard-codes the default ID and draws k
  from ``random`` (Mersenne Twister, predictable), so e is computed here with
  ``compute_e`` and gmssl's low-level ``sign(e, k)`` gets k from ``secrets``.
- Encryption: gmssl's ``encrypt`` also draws k from ``random``, and its
  ``decrypt`` never compares C3 and never checks C1, so both are composed
  here from gmssl's point multiplication and SM3 KDF, with k from ``secrets``.
- gmssl's ``CryptSM2`` strips a "04" prefix with ``str.lstrip("04")``, which
  also eats leading 0/4 digits of X; the point is therefore set directly.
"""

from __future__ import annotations

import hmac
import secrets

from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3

from trust.errors import DecryptionFailed, InvalidKey, InvalidLength, InvalidSignature
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2PrivateHandle, SM2PublicHandle
from trust.sm2.curve import (
    FIELD_BYTES,
    N,
    check_private_scalar,
    compute_e,
    decode_point,
    is_on_curve,
)
from trust.sm2.encoding import der_to_raw, encode_cipher, encode_signature, parse_cipher

DIGEST_BYTES = 32
_HEX_FIELD = 2 * FIELD_BYTES
_G_HEX = gm_sm2.default_ecc_table["g"]


def _crypt(point_hex: str, d: int | None = None) -> gm_sm2.CryptSM2:
    crypt = gm_sm2.CryptSM2(private_key=f"{d:064x}" if d is not None else "", public_key="")
    crypt.public_key = point_hex  # see module docstring: bypass gmssl's lstrip("04")
    return crypt


def _mult(crypt: gm_sm2.CryptSM2, k: int, point_hex: str) -> str:
    """k*P as 128 hex digits x||y (P valid, 1 <= k < n, so never the point at infinity)."""
    result: str = crypt._kg(k, point_hex)
    return result


def _kdf_xor(xy_hex: str, data: bytes) -> tuple[bytes, bytes]:
    """(data XOR t, t) with t = KDF(x2||y2, len(data)); callers reject an all-zero t."""
    t = bytes.fromhex(gm_sm3.sm3_kdf(xy_hex.encode("ascii"), len(data)))
    return bytes(a ^ b for a, b in zip(data, t, strict=True)), t


def _c3(xy_hex: str, message: bytes) -> bytes:
    """C3 = SM3(x2 || M || y2)."""
    data = bytes.fromhex(xy_hex[:_HEX_FIELD]) + message + bytes.fromhex(xy_hex[_HEX_FIELD:])
    return bytes.fromhex(gm_sm3.sm3_hash(list(data)))


class PurePublicKey:
    __slots__ = ("_crypt", "_point", "_point_hex")

    def __init__(self, point: bytes) -> None:
        self._point = point
        self._point_hex = point[1:].hex()
        self._crypt = _crypt(self._point_hex)

    def public_bytes(self) -> bytes:
        return self._point

    def verify(
        self, message: bytes, signature: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> None:
        self.verify_digest(compute_e(self._point, message, signer_id), signature)

    def verify_digest(self, e: bytes, signature: bytes) -> None:
        if len(e) != DIGEST_BYTES:
            raise InvalidLength("SM2 digest e must be 32 bytes")
        raw = der_to_raw(signature)
        try:
            ok = bool(self._crypt.verify(raw.hex(), e))
        # gmssl fails with TypeError when s*G + t*P is the point at infinity:
        # that is a signature that does not verify, not an engine fault.
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidSignature("SM2 signature does not verify")

    def encrypt(self, plaintext: bytes) -> bytes:
        if not plaintext:
            raise InvalidLength("SM2 plaintext must not be empty")
        while True:
            k = secrets.randbelow(N - 1) + 1
            c1 = _mult(self._crypt, k, _G_HEX)
            xy = _mult(self._crypt, k, self._point_hex)
            c2, t = _kdf_xor(xy, plaintext)
            if any(t):  # GM/T 0003.4 A5: an all-zero key stream means pick another k
                break
        c3 = _c3(xy, plaintext)
        return encode_cipher(int(c1[:_HEX_FIELD], 16), int(c1[_HEX_FIELD:], 16), c3, c2)


class PurePrivateKey:
    __slots__ = ("_crypt", "_d", "_public")

    def __init__(self, d: int) -> None:
        self._d = d
        point_hex = _mult(_crypt(_G_HEX), d, _G_HEX)
        self._public = PurePublicKey(b"\x04" + bytes.fromhex(point_hex))
        self._crypt = _crypt(point_hex, d)

    def public_bytes(self) -> bytes:
        return self._public.public_bytes()

    def public_handle(self) -> SM2PublicHandle:
        return self._public

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        return self.sign_digest(compute_e(self._public.public_bytes(), message, signer_id))

    def sign_digest(self, e: bytes) -> bytes:
        if len(e) != DIGEST_BYTES:
            raise InvalidLength("SM2 digest e must be 32 bytes")
        while True:
            k = secrets.randbelow(N - 1) + 1
            # gmssl returns None for the rare r = 0, r + k = n, s = 0 cases: retry.
            raw_hex: str | None = self._crypt.sign(e, f"{k:064x}")
            if raw_hex is not None:
                return encode_signature(
                    int(raw_hex[:_HEX_FIELD], 16), int(raw_hex[_HEX_FIELD:], 16)
                )

    def decrypt(self, ciphertext: bytes) -> bytes:
        x1, y1, c3, c2 = parse_cipher(ciphertext)
        if not is_on_curve(x1, y1):
            raise DecryptionFailed("SM2 ciphertext C1 is not on the curve")
        xy = _mult(self._crypt, self._d, f"{x1:064x}{y1:064x}")
        plaintext, t = _kdf_xor(xy, c2)
        if not any(t) or not hmac.compare_digest(_c3(xy, plaintext), c3):
            raise DecryptionFailed("SM2 ciphertext does not decrypt")
        return plaintext


class PureBackend:
    name = "pure"

    def generate(self) -> SM2PrivateHandle:
        return PurePrivateKey(secrets.randbelow(N - 2) + 1)

    def load_private(self, scalar: bytes) -> SM2PrivateHandle:
        return PurePrivateKey(check_private_scalar(scalar))

    def load_public(self, point: bytes) -> SM2PublicHandle:
        decode_point(point)
        return PurePublicKey(bytes(point))

    def private_scalar(self, handle: SM2PrivateHandle) -> bytes:
        if not isinstance(handle, PurePrivateKey):
            raise InvalidKey("handle does not belong to the pure SM2 backend")
        return handle._d.to_bytes(FIELD_BYTES, "big")
