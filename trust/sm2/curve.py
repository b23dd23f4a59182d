"""SM2 curve parameters, point checks and the Z / e values of GM/T 0003.2.

The reference arithmetic at the end of this module is variable-time and slow;
it exists only to reproduce the standards' worked examples (fixed k, the
GM/T 0003.2 test curve) in tests. Production signing goes through a backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from trust.errors import InvalidKey, InvalidLength
from trust.sm2.backend import DEFAULT_SIGNER_ID
from trust.sm3 import sm3

FIELD_BYTES = 32
POINT_BYTES = 1 + 2 * FIELD_BYTES
# OpenSSL refuses IDs of UINT16_MAX/8 bytes or more (sm2_compute_z_digest);
# using the same bound keeps every backend accepting exactly the same IDs.
MAX_SIGNER_ID_BYTES = 0xFFFF // 8 - 1


@dataclass(frozen=True, slots=True)
class CurveParams:
    """Short Weierstrass curve y^2 = x^3 + ax + b over GF(p), base point G of prime order n."""

    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int

    def ab_g_bytes(self) -> bytes:
        """a || b || xG || yG, the curve part of the Z input."""
        return b"".join(v.to_bytes(FIELD_BYTES, "big") for v in (self.a, self.b, self.gx, self.gy))


# GB/T 32918.5 recommended curve (curve OID 1.2.156.10197.1.301).
SM2_CURVE = CurveParams(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)
N = SM2_CURVE.n
_SM2_AB_G = SM2_CURVE.ab_g_bytes()


def is_on_curve(x: int, y: int, curve: CurveParams = SM2_CURVE) -> bool:
    """True if (x, y) is an affine point of the curve with canonical coordinates."""
    p = curve.p
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def decode_point(point: bytes, curve: CurveParams = SM2_CURVE) -> tuple[int, int]:
    """Parse an uncompressed 04||X||Y point and check it lies on the curve, or InvalidKey."""
    if len(point) != POINT_BYTES or point[0] != 0x04:
        raise InvalidKey("SM2 public key must be a 65-byte uncompressed point 04||X||Y")
    x = int.from_bytes(point[1 : 1 + FIELD_BYTES], "big")
    y = int.from_bytes(point[1 + FIELD_BYTES :], "big")
    if not is_on_curve(x, y, curve):
        raise InvalidKey("SM2 public key point is not on the curve")
    return x, y


def check_private_scalar(scalar: bytes) -> int:
    """The scalar d as an int, in [1, n-2] (signing needs 1 + d invertible mod n), or InvalidKey."""
    if len(scalar) != FIELD_BYTES:
        raise InvalidKey("SM2 private key must be a 32-byte scalar")
    d = int.from_bytes(scalar, "big")
    if not 1 <= d <= N - 2:
        raise InvalidKey("SM2 private key scalar out of range [1, n-2]")
    return d


def encode_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(FIELD_BYTES, "big") + y.to_bytes(FIELD_BYTES, "big")


def compute_z(
    public_point65: bytes, signer_id: bytes = DEFAULT_SIGNER_ID, curve: CurveParams = SM2_CURVE
) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), ENTL = bit length of ID (2 bytes)."""
    decode_point(public_point65, curve)
    if len(signer_id) > MAX_SIGNER_ID_BYTES:
        raise InvalidLength(f"SM2 signer ID longer than {MAX_SIGNER_ID_BYTES} bytes")
    ab_g = _SM2_AB_G if curve is SM2_CURVE else curve.ab_g_bytes()
    entl = (8 * len(signer_id)).to_bytes(2, "big")
    return sm3(entl + signer_id + ab_g + public_point65[1:])


def compute_e(
    public_point65: bytes,
    message: bytes,
    signer_id: bytes = DEFAULT_SIGNER_ID,
    curve: CurveParams = SM2_CURVE,
) -> bytes:
    """e = SM3(Z || M), the value that is actually signed."""
    return sm3(compute_z(public_point65, signer_id, curve) + message)


# --- Reference arithmetic: tests and worked examples only -------------------
# Affine, variable-time, slow. Never use it with a real key.

AffinePoint = tuple[int, int] | None  # None is the point at infinity


def point_add(curve: CurveParams, p1: AffinePoint, p2: AffinePoint) -> AffinePoint:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    p = curve.p
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        lam = (3 * x1 * x1 + curve.a) * pow(2 * y1, -1, p) % p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return x3, (lam * (x1 - x3) - y1) % p


def scalar_mult(curve: CurveParams, k: int, point: AffinePoint) -> AffinePoint:
    result: AffinePoint = None
    addend = point
    while k:
        if k & 1:
            result = point_add(curve, result, addend)
        addend = point_add(curve, addend, addend)
        k >>= 1
    return result


def reference_sign_with_k(curve: CurveParams, d: int, e: bytes, k: int) -> tuple[int, int]:
    """TEST ONLY: GM/T 0003.2 signature with a caller-chosen k, to reproduce worked examples."""
    n = curve.n
    kg = scalar_mult(curve, k, (curve.gx, curve.gy))
    assert kg is not None
    r = (int.from_bytes(e, "big") + kg[0]) % n
    s = pow(1 + d, -1, n) * (k - r * d) % n
    return r, s


def reference_verify(curve: CurveParams, public: tuple[int, int], e: bytes, r: int, s: int) -> bool:
    """TEST ONLY: GM/T 0003.2 verification on any curve (e.g. the 0003.2 annex test curve)."""
    n = curve.n
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    pt = point_add(
        curve, scalar_mult(curve, s, (curve.gx, curve.gy)), scalar_mult(curve, t, public)
    )
    return pt is not None and (int.from_bytes(e, "big") + pt[0]) % n == r
