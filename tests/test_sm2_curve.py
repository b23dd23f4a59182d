"""Curve parameters, Z and e against the worked examples in tests/vectors/sm2_sign.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.errors import InvalidKey, InvalidLength
from trust.sm2.curve import (
    MAX_SIGNER_ID_BYTES,
    SM2_CURVE,
    CurveParams,
    N,
    check_private_scalar,
    compute_e,
    compute_z,
    decode_point,
    encode_point,
    is_on_curve,
    reference_sign_with_k,
    reference_verify,
    scalar_mult,
)
from trust.sm3 import sm3

VECTORS = {
    v["name"]: v
    for v in json.loads((Path(__file__).parent / "vectors" / "sm2_sign.json").read_text())[
        "vectors"
    ]
}
G = (SM2_CURVE.gx, SM2_CURVE.gy)


def _curve(v: dict[str, Any]) -> CurveParams:
    if v["curve"] == "sm2p256v1":
        return SM2_CURVE
    return CurveParams(**{k: int(x, 16) for k, x in v["curve_params"].items()})


def test_recommended_curve_is_consistent() -> None:
    assert is_on_curve(*G)
    assert scalar_mult(SM2_CURVE, N, G) is None  # G has order n
    assert scalar_mult(SM2_CURVE, N - 1, G) == (SM2_CURVE.gx, (-SM2_CURVE.gy) % SM2_CURVE.p)


@pytest.mark.parametrize("name", ["A", "B"])
def test_worked_example_reproduces_public_key_z_e_and_signature(name: str) -> None:
    v = VECTORS[name]
    curve = _curve(v)
    d = int(v["d"], 16)
    public = scalar_mult(curve, d, (curve.gx, curve.gy))
    assert public == (int(v["px"], 16), int(v["py"], 16))
    point = encode_point(*public)
    signer_id, message = v["id"].encode(), v["message"].encode()
    assert compute_z(point, signer_id, curve).hex().upper() == v["z"]
    e = compute_e(point, message, signer_id, curve)
    assert e.hex().upper() == v["e"]
    r, s = reference_sign_with_k(curve, d, e, int(v["k"], 16))
    assert (f"{r:064X}", f"{s:064X}") == (v["r"], v["s"])
    assert reference_verify(curve, public, e, r, s)
    assert not reference_verify(curve, public, e, r, (s + 1) % curve.n)
    assert not reference_verify(curve, public, sm3(e), r, s)


def test_z_matches_its_definition_for_the_default_id() -> None:
    point = bytes.fromhex(VECTORS["C"]["public"])
    expected = sm3(
        bytes.fromhex("0080")
        + b"1234567812345678"
        + b"".join(
            v.to_bytes(32, "big") for v in (SM2_CURVE.a, SM2_CURVE.b, SM2_CURVE.gx, SM2_CURVE.gy)
        )
        + point[1:]
    )
    assert compute_z(point) == expected
    assert compute_e(point, b"m") == sm3(expected + b"m")


def test_signer_id_length_limit() -> None:
    point = bytes.fromhex(VECTORS["C"]["public"])
    assert len(compute_z(point, b"\x00" * MAX_SIGNER_ID_BYTES)) == 32
    assert len(compute_z(point, b"")) == 32
    with pytest.raises(InvalidLength):
        compute_z(point, b"\x00" * (MAX_SIGNER_ID_BYTES + 1))


@pytest.mark.parametrize(
    "point",
    [
        b"",
        b"\x04" + b"\x00" * 64,  # (0, 0) is not on the curve
        b"\x02" + bytes.fromhex(VECTORS["C"]["public"])[1:],  # wrong prefix
        bytes.fromhex(VECTORS["C"]["public"])[:-1],  # short
        bytes.fromhex(VECTORS["C"]["public"]) + b"\x00",  # long
        bytes.fromhex(VECTORS["C"]["public"])[:-1] + b"\x00",  # y changed
        b"\x04" + b"\xff" * 64,  # coordinates >= p
    ],
)
def test_decode_point_rejects(point: bytes) -> None:
    with pytest.raises(InvalidKey):
        decode_point(point)
    with pytest.raises(InvalidKey):
        compute_e(point, b"m")


def test_decode_point_rejects_non_canonical_coordinate() -> None:
    # x + p satisfies the equation mod p but is not a field element.
    x, y = SM2_CURVE.gx, SM2_CURVE.gy
    assert not is_on_curve(x + SM2_CURVE.p, y)
    assert decode_point(encode_point(x, y)) == (x, y)


@pytest.mark.parametrize("d", [0, N - 1, N, 2**256 - 1])
def test_private_scalar_range(d: int) -> None:
    with pytest.raises(InvalidKey):
        check_private_scalar(d.to_bytes(32, "big"))


def test_private_scalar_bounds_accepted_and_length_checked() -> None:
    assert check_private_scalar((1).to_bytes(32, "big")) == 1
    assert check_private_scalar((N - 2).to_bytes(32, "big")) == N - 2
    with pytest.raises(InvalidKey):
        check_private_scalar(b"\x01" * 31)


@given(st.integers(min_value=1, max_value=N - 1))
def test_multiples_of_g_are_on_the_curve(k: int) -> None:
    point = scalar_mult(SM2_CURVE, k, G)
    assert point is not None
    assert decode_point(encode_point(*point)) == point
