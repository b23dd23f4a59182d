"""SM3, HMAC-SM3 and SM4 against published vectors (tests/vectors/sm3.json, sm4.json) and
against an independent implementation (gmssl's pure-Python SM3)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3
from hypothesis import given
from hypothesis import strategies as st

from trust import sm4
from trust.errors import DecryptionFailed, InvalidLength
from trust.sm3 import SM3, hmac_sm3, hmac_sm3_verify, sm3, sm3_cryptography, sm3_hashlib

VECTORS = Path(__file__).parent / "vectors"
SM3_VECTORS = json.loads((VECTORS / "sm3.json").read_text())
SM4_VECTORS = json.loads((VECTORS / "sm4.json").read_text())


def _field(v: dict[str, Any], name: str) -> bytes:
    if f"{name}_hex" in v:
        return bytes.fromhex(v[f"{name}_hex"])
    return str(v[f"{name}_ascii"]).encode()


def _gmssl_sm3(data: bytes) -> bytes:
    return bytes.fromhex(gm_sm3.sm3_hash(gm_func.bytes_to_list(data)))


def _hand_hmac_sm3(key: bytes, data: bytes) -> bytes:
    """RFC 2104 written out over gmssl's SM3: an independent route to HMAC-SM3."""
    block = 64
    if len(key) > block:
        key = _gmssl_sm3(key)
    key = key.ljust(block, b"\0")
    inner = _gmssl_sm3(bytes(k ^ 0x36 for k in key) + data)
    return _gmssl_sm3(bytes(k ^ 0x5C for k in key) + inner)


# --- SM3 -------------------------------------------------------------------------


@pytest.mark.parametrize("v", SM3_VECTORS["hash"], ids=lambda v: v["name"])
def test_sm3_vectors(v: dict[str, Any]) -> None:
    message = _field(v, "message")
    assert sm3(message).hex() == v["digest_hex"]
    assert sm3_cryptography(message).hex() == v["digest_hex"]
    h = SM3()
    for i in range(len(message)):
        h.update(message[i : i + 1])
    assert h.digest().hex() == v["digest_hex"]


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_sm3_matches_gmssl_and_streams(data: bytes, cut: int) -> None:
    h = SM3(data[:cut])
    copy = h.copy()
    h.update(data[cut:])
    assert h.digest() == sm3(data) == _gmssl_sm3(data) == sm3_cryptography(data)
    if "sm3" in hashlib.algorithms_available:
        assert sm3_hashlib(data) == sm3(data)
    copy.update(data[cut:])
    assert copy.digest() == sm3(data)


@pytest.mark.parametrize("v", SM3_VECTORS["hmac"], ids=lambda v: v["name"])
def test_hmac_sm3_vectors(v: dict[str, Any]) -> None:
    key, message, mac = _field(v, "key"), _field(v, "message"), bytes.fromhex(v["mac_hex"])
    assert hmac_sm3(key, message) == mac
    assert _hand_hmac_sm3(key, message) == mac
    assert hmac_sm3_verify(key, message, mac)
    assert not hmac_sm3_verify(key, message + b"x", mac)


@given(st.binary(min_size=1, max_size=150), st.binary(max_size=200))
def test_hmac_sm3_matches_hand_hmac(key: bytes, data: bytes) -> None:
    assert hmac_sm3(key, data) == _hand_hmac_sm3(key, data)


# --- SM4 known answers -----------------------------------------------------------


@pytest.mark.parametrize("v", SM4_VECTORS["single_block"], ids=lambda v: v["name"])
def test_sm4_single_block(v: dict[str, Any]) -> None:
    key, pt, ct = _field(v, "key"), _field(v, "plaintext"), _field(v, "ciphertext")
    assert sm4.ecb_encrypt(key, pt) == ct
    assert sm4.ecb_decrypt(key, ct) == pt


@pytest.mark.slow
@pytest.mark.parametrize("v", SM4_VECTORS["iterated"], ids=lambda v: v["name"])
def test_sm4_iterated(v: dict[str, Any]) -> None:
    enc = sm4.ecb_encryptor(_field(v, "key"))
    block = _field(v, "plaintext")
    for _ in range(int(v["iterations"])):
        block = enc.update(block)
    assert block == _field(v, "ciphertext")


@pytest.mark.parametrize("v", SM4_VECTORS["gcm"], ids=lambda v: v["name"])
def test_sm4_gcm_vector(v: dict[str, Any]) -> None:
    key, nonce, aad = _field(v, "key"), _field(v, "nonce"), _field(v, "aad")
    pt = _field(v, "plaintext")
    sealed = _field(v, "ciphertext") + _field(v, "tag")
    assert sm4.gcm_encrypt(key, nonce, pt, aad) == sealed
    assert sm4.gcm_decrypt(key, nonce, sealed, aad) == pt


# --- SM4 modes: round trips and tamper detection ----------------------------------

keys16 = st.binary(min_size=16, max_size=16)


@given(keys16, keys16, st.binary(max_size=100))
def test_cbc_round_trip_and_padding(key: bytes, iv: bytes, pt: bytes) -> None:
    ct = sm4.cbc_encrypt(key, iv, pt)
    assert len(ct) == (len(pt) // 16 + 1) * 16
    assert sm4.cbc_decrypt(key, iv, ct) == pt


@given(keys16, keys16, st.binary(max_size=100))
def test_ctr_round_trip(key: bytes, counter: bytes, pt: bytes) -> None:
    ct = sm4.ctr_crypt(key, counter, pt)
    assert len(ct) == len(pt)
    assert sm4.ctr_crypt(key, counter, ct) == pt


@given(
    keys16,
    st.binary(min_size=12, max_size=12),
    st.binary(max_size=64),
    st.binary(max_size=32),
    st.data(),
)
def test_gcm_round_trip_and_any_change_fails(
    key: bytes, nonce: bytes, pt: bytes, aad: bytes, data: st.DataObject
) -> None:
    sealed = sm4.gcm_encrypt(key, nonce, pt, aad)
    assert sm4.gcm_decrypt(key, nonce, sealed, aad) == pt
    i = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    tampered = bytearray(sealed)
    tampered[i] ^= 1 << bit
    with pytest.raises(DecryptionFailed):
        sm4.gcm_decrypt(key, nonce, bytes(tampered), aad)
    with pytest.raises(DecryptionFailed):
        sm4.gcm_decrypt(key, nonce, sealed, aad + b"x")


def test_cbc_bad_padding_is_decryption_failed() -> None:
    key, iv = bytes(16), bytes(16)
    # A block whose decryption ends in 0x00 is never valid PKCS#7.
    forged = sm4.ecb_encrypt(key, bytes(16))
    with pytest.raises(DecryptionFailed):
        sm4.cbc_decrypt(key, iv, forged)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sm4.cbc_encrypt(bytes(15), bytes(16), b""),
        lambda: sm4.cbc_encrypt(bytes(16), bytes(8), b""),
        lambda: sm4.cbc_decrypt(bytes(16), bytes(16), b""),
        lambda: sm4.cbc_decrypt(bytes(16), bytes(16), bytes(17)),
        lambda: sm4.ctr_crypt(bytes(32), bytes(16), b"x"),
        lambda: sm4.ctr_crypt(bytes(16), bytes(12), b"x"),
        lambda: sm4.gcm_encrypt(bytes(16), bytes(16), b"x"),
        lambda: sm4.gcm_decrypt(bytes(16), bytes(12), bytes(15)),
        lambda: sm4.gcm_decrypt(bytes(17), bytes(12), bytes(16)),
        lambda: sm4.ecb_encrypt(bytes(16), bytes(15)),
        lambda: sm4.ecb_decrypt(bytes(16), bytes(33)),
        lambda: sm4.ecb_encryptor(bytes(0)),
    ],
)
def test_length_errors(call: Any) -> None:
    with pytest.raises(InvalidLength):
        call()
