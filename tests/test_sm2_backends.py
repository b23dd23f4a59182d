"""Behaviour every SM2 backend must share: vectors, round trips, tamper detection, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trust.errors import (
    DecryptionFailed,
    InvalidKey,
    InvalidLength,
    InvalidSignature,
    InvalidSignatureEncoding,
    MalformedASN1,
    TrustError,
)
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend, SM2PrivateHandle
from trust.sm2.curve import (
    MAX_SIGNER_ID_BYTES,
    SM2_CURVE,
    N,
    compute_e,
    encode_point,
    scalar_mult,
)
from trust.sm2.encoding import encode_cipher, encode_signature, parse_cipher, raw_to_der
from trust.sm2.select import get_backend

BACKENDS = ["openssl", "pure"]
VECTORS = {
    v["name"]: v
    for v in json.loads((Path(__file__).parent / "vectors" / "sm2_sign.json").read_text())[
        "vectors"
    ]
}
# The pure backend needs tens of milliseconds per operation: keep example counts modest.
PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
signer_ids = st.one_of(
    st.just(DEFAULT_SIGNER_ID),
    st.just(b""),
    st.just("签名者标识 ✓".encode()),
    st.binary(min_size=0, max_size=300),
    st.just(b"L" * MAX_SIGNER_ID_BYTES),
)


@pytest.fixture(params=BACKENDS, scope="module")
def backend(request: pytest.FixtureRequest) -> SM2Backend:
    return get_backend(request.param)


@pytest.fixture(scope="module")
def key(backend: SM2Backend) -> SM2PrivateHandle:
    return backend.generate()


def test_vector_a_signature_verifies(backend: SM2Backend) -> None:
    v = VECTORS["A"]
    public = backend.load_public(b"\x04" + bytes.fromhex(v["px"] + v["py"]))
    sig = raw_to_der(bytes.fromhex(v["r"] + v["s"]))
    public.verify(v["message"].encode(), sig, v["id"].encode())
    public.verify_digest(bytes.fromhex(v["e"]), sig)
    with pytest.raises(InvalidSignature):
        public.verify(v["message"].encode(), sig, b"1234567812345679")


@pytest.mark.parametrize("name", ["A", "C"])
def test_vector_private_key_gives_public_key(backend: SM2Backend, name: str) -> None:
    v = VECTORS[name]
    expected = (
        bytes.fromhex(v["public"]) if "public" in v else b"\x04" + bytes.fromhex(v["px"] + v["py"])
    )
    handle = backend.load_private(bytes.fromhex(v["d"]))
    assert handle.public_bytes() == expected
    assert handle.public_handle().public_bytes() == expected
    assert backend.private_scalar(handle) == bytes.fromhex(v["d"])


def test_vector_c_gmsm_kat(backend: SM2Backend) -> None:
    v = VECTORS["C"]
    public = backend.load_public(bytes.fromhex(v["public"]))
    public.verify(v["message"].encode(), bytes.fromhex(v["signature_der"]))
    with pytest.raises(InvalidSignature):
        public.verify(v["message"].encode() + b".", bytes.fromhex(v["signature_der"]))


def test_generated_keys_are_distinct_and_valid(backend: SM2Backend) -> None:
    keys = [backend.generate() for _ in range(3)]
    scalars = {backend.private_scalar(k) for k in keys}
    assert len(scalars) == 3
    for k in keys:
        d = int.from_bytes(backend.private_scalar(k), "big")
        assert 1 <= d <= N - 2
        point = scalar_mult(SM2_CURVE, d, (SM2_CURVE.gx, SM2_CURVE.gy))
        assert point is not None
        assert k.public_bytes() == encode_point(*point)


@PROPERTY
@given(message=st.binary(max_size=2000), signer_id=signer_ids)
def test_sign_verify_round_trip(key: SM2PrivateHandle, message: bytes, signer_id: bytes) -> None:
    sig = key.sign(message, signer_id)
    public = key.public_handle()
    public.verify(message, sig, signer_id)
    e = compute_e(key.public_bytes(), message, signer_id)
    public.verify_digest(e, sig)
    public.verify_digest(e, key.sign_digest(e))
    public.verify(message, key.sign_digest(e), signer_id)


@PROPERTY
@given(
    message=st.binary(min_size=1, max_size=200),
    signer_id=signer_ids,
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_any_change_fails_verification(
    backend: SM2Backend, key: SM2PrivateHandle, message: bytes, signer_id: bytes, flip: int
) -> None:
    sig = key.sign(message, signer_id)
    public = key.public_handle()
    bit = 1 << (flip % 8)

    changed_msg = bytearray(message)
    changed_msg[flip % len(message)] ^= bit
    with pytest.raises(InvalidSignature):
        public.verify(bytes(changed_msg), sig, signer_id)

    with pytest.raises(InvalidSignature):
        public.verify(message, sig, signer_id[:-1] if signer_id else b"x")

    # A changed signature either no longer parses or no longer verifies.
    changed_sig = bytearray(sig)
    changed_sig[flip % len(sig)] ^= bit
    with pytest.raises((InvalidSignature, InvalidSignatureEncoding)):
        public.verify(message, bytes(changed_sig), signer_id)

    other = backend.generate().public_handle()
    with pytest.raises(InvalidSignature):
        other.verify(message, sig, signer_id)


@PROPERTY
@given(plaintext=st.binary(min_size=1, max_size=1000))
def test_encrypt_decrypt_round_trip(key: SM2PrivateHandle, plaintext: bytes) -> None:
    ct = key.public_handle().encrypt(plaintext)
    x, y, c3, c2 = parse_cipher(ct)
    assert len(c2) == len(plaintext) and len(c3) == 32
    assert key.decrypt(ct) == plaintext


@PROPERTY
@given(plaintext=st.binary(min_size=1, max_size=64), flip=st.integers(min_value=0, max_value=999))
def test_tampered_ciphertext_fails(key: SM2PrivateHandle, plaintext: bytes, flip: int) -> None:
    x, y, c3, c2 = parse_cipher(key.public_handle().encrypt(plaintext))
    bit = 1 << (flip % 8)
    c2_changed = bytearray(c2)
    c2_changed[flip % len(c2)] ^= bit
    c3_changed = bytearray(c3)
    c3_changed[flip % 32] ^= bit
    for ct in (
        encode_cipher(x, y, c3, bytes(c2_changed)),
        encode_cipher(x, y, bytes(c3_changed), c2),
        encode_cipher(x, (y + 1) % SM2_CURVE.p, c3, c2),  # C1 off the curve
        encode_cipher(SM2_CURVE.gx, SM2_CURVE.gy, c3, c2),  # another valid C1
    ):
        with pytest.raises(DecryptionFailed):
            key.decrypt(ct)


def test_wrong_key_cannot_decrypt(backend: SM2Backend, key: SM2PrivateHandle) -> None:
    ct = key.public_handle().encrypt(b"secret")
    with pytest.raises(DecryptionFailed):
        backend.generate().decrypt(ct)


@pytest.mark.parametrize("ct", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x01", b"junk"])
def test_malformed_ciphertext(key: SM2PrivateHandle, ct: bytes) -> None:
    with pytest.raises(MalformedASN1):
        key.decrypt(ct)


def test_empty_plaintext_rejected(key: SM2PrivateHandle) -> None:
    with pytest.raises(InvalidLength):
        key.public_handle().encrypt(b"")


@pytest.mark.parametrize(
    "sig",
    [
        b"",
        b"\x30\x00",
        encode_signature(0, 1),
        encode_signature(1, 0),
        encode_signature(N, 1),
        encode_signature(1, N),
        encode_signature(N + 5, 2**255),
        encode_signature(-1, 1),
    ],
)
def test_malformed_signature_raises_encoding_error(key: SM2PrivateHandle, sig: bytes) -> None:
    with pytest.raises(InvalidSignatureEncoding):
        key.public_handle().verify(b"m", sig)
    with pytest.raises(InvalidSignatureEncoding):
        key.public_handle().verify_digest(b"\x00" * 32, sig)


def test_r_plus_s_equal_n_does_not_verify(key: SM2PrivateHandle) -> None:
    with pytest.raises(InvalidSignature):
        key.public_handle().verify(b"m", encode_signature(1, N - 1))


def test_signature_summing_to_infinity_does_not_verify(backend: SM2Backend) -> None:
    # With d known, choose s so that s*G + (r+s)*P is the point at infinity:
    # s + (r + s) d = 0 mod n  =>  s = -r d / (1 + d).
    d, r = 7, 12345
    key = backend.load_private(d.to_bytes(32, "big"))
    s = (-r * d * pow(1 + d, -1, N)) % N
    with pytest.raises(InvalidSignature):
        key.public_handle().verify_digest(b"\x01" * 32, encode_signature(r, s))


@pytest.mark.parametrize("e", [b"", b"\x00" * 31, b"\x00" * 33])
def test_digest_length_checked(key: SM2PrivateHandle, e: bytes) -> None:
    sig = key.sign(b"m")
    with pytest.raises(InvalidLength):
        key.sign_digest(e)
    with pytest.raises(InvalidLength):
        key.public_handle().verify_digest(e, sig)


def test_signer_id_too_long(key: SM2PrivateHandle) -> None:
    with pytest.raises(InvalidLength):
        key.sign(b"m", b"x" * (MAX_SIGNER_ID_BYTES + 1))
    with pytest.raises(InvalidLength):
        key.public_handle().verify(b"m", key.sign(b"m"), b"x" * (MAX_SIGNER_ID_BYTES + 1))


@pytest.mark.parametrize(
    "scalar",
    [
        b"",
        b"\x01" * 31,
        b"\x01" * 33,
        b"\x00" * 32,
        (N - 1).to_bytes(32, "big"),
        N.to_bytes(32, "big"),
        b"\xff" * 32,
    ],
)
def test_load_private_rejects(backend: SM2Backend, scalar: bytes) -> None:
    with pytest.raises(InvalidKey):
        backend.load_private(scalar)


@pytest.mark.parametrize(
    "point",
    [
        b"",
        b"\x04" + b"\x00" * 64,
        b"\x04" + b"\xff" * 64,
        encode_point(SM2_CURVE.gx, SM2_CURVE.gy + 1),
        b"\x03" + SM2_CURVE.gx.to_bytes(32, "big"),  # compressed form not accepted
        encode_point(SM2_CURVE.gx, SM2_CURVE.gy)[1:],  # no 04 prefix
    ],
)
def test_load_public_rejects(backend: SM2Backend, point: bytes) -> None:
    with pytest.raises(InvalidKey):
        backend.load_public(point)


@PROPERTY
@given(data=st.binary(max_size=120))
def test_garbage_only_raises_trust_errors(
    key: SM2PrivateHandle, backend: SM2Backend, data: bytes
) -> None:
    calls = [
        lambda: key.public_handle().verify(b"m", data),
        lambda: key.decrypt(data),
        lambda: backend.load_public(data),
        lambda: backend.load_private(data),
    ]
    for call in calls:
        with pytest.raises(TrustError):
            call()


def test_private_scalar_rejects_foreign_handle(backend: SM2Backend) -> None:
    class Foreign:
        pass

    with pytest.raises(InvalidKey):
        backend.private_scalar(Foreign())  # type: ignore[arg-type]
