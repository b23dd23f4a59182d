"""SM4 block cipher (GB/T 32907, GM/T 0002) in CBC, CTR, GCM and ECB modes, from ``cryptography``.

- CBC pads with PKCS#7 and needs a 16-byte IV that the caller never reuses.
- CTR is a stream mode: 16-byte initial counter block, no padding, no integrity.
- GCM is the only authenticated mode: 12-byte nonce, optional AAD, 16-byte tag
  appended to the ciphertext; a tag mismatch raises ``DecryptionFailed``.
- ECB exists for known-answer tests and raw single-block uses (GM/T 0009
  SM2EnvelopedKey encrypts the 32-byte private scalar with it). Never use it
  for data: it leaks equal blocks.
"""

from __future__ import annotations

from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from trust.errors import DecryptionFailed, InvalidLength

KEY_SIZE = 16
BLOCK_SIZE = 16
IV_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16

_M = TypeVar("_M", bound=modes.Mode)


def _check(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise InvalidLength(f"SM4 {name} must be {size} bytes, got {len(value)}")


def _cipher(key: bytes, mode: _M) -> Cipher[_M]:
    _check("key", key, KEY_SIZE)
    return Cipher(algorithms.SM4(key), mode)


def _run(ctx: CipherContext, data: bytes) -> bytes:
    return ctx.update(data) + ctx.finalize()


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK_SIZE:
        raise InvalidLength(f"SM4 input must be a multiple of {BLOCK_SIZE} bytes")


# --- CBC ------------------------------------------------------------------------


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding (always adds 1..16 bytes)."""
    _check("IV", iv, IV_SIZE)
    padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    return _run(_cipher(key, modes.CBC(iv)).encryptor(), padded)


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of ``cbc_encrypt``; bad padding raises ``DecryptionFailed``.

    CBC has no integrity: a padding check is not authentication. Use GCM, or a
    MAC over the ciphertext, wherever an attacker can submit ciphertexts.
    """
    _check("IV", iv, IV_SIZE)
    if not ciphertext:
        raise InvalidLength("SM4-CBC ciphertext is empty")
    _check_blocks(ciphertext)
    padded = _run(_cipher(key, modes.CBC(iv)).decryptor(), ciphertext)
    unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionFailed("SM4-CBC padding is invalid") from None


# --- CTR ------------------------------------------------------------------------


def ctr_crypt(key: bytes, counter: bytes, data: bytes) -> bytes:
    """SM4-CTR; encryption and decryption are the same operation."""
    _check("counter block", counter, IV_SIZE)
    return _run(_cipher(key, modes.CTR(counter)).encryptor(), data)


# --- GCM ------------------------------------------------------------------------


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM; returns ciphertext || 16-byte tag. Never reuse a nonce under one key."""
    _check("GCM nonce", nonce, GCM_NONCE_SIZE)
    enc = _cipher(key, modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    ciphertext = _run(enc, plaintext)
    return ciphertext + enc.tag


def gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Inverse of ``gcm_encrypt``; a wrong key, nonce, AAD, tag or ciphertext raises
    ``DecryptionFailed``."""
    _check("GCM nonce", nonce, GCM_NONCE_SIZE)
    if len(data) < GCM_TAG_SIZE:
        raise InvalidLength("SM4-GCM input is shorter than the tag")
    ciphertext, tag = data[:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:]
    dec = _cipher(key, modes.GCM(nonce, tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(aad)
    try:
        return _run(dec, ciphertext)
    except InvalidTag:
        raise DecryptionFailed("SM4-GCM authentication failed") from None


# --- ECB (known-answer tests and raw blocks only) -------------------------------


def _ecb(key: bytes) -> Cipher[modes.ECB]:
    # ECB is deliberate here: single raw blocks and known-answer tests only.
    return _cipher(key, modes.ECB())  # noqa: S305


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """Raw SM4-ECB over whole blocks, no padding. Not for data: see the module docstring."""
    _check_blocks(data)
    return _run(_ecb(key).encryptor(), data)


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Inverse of ``ecb_encrypt``."""
    _check_blocks(data)
    return _run(_ecb(key).decryptor(), data)


def ecb_encryptor(key: bytes) -> CipherContext:
    """A reusable raw SM4-ECB encryptor (call ``update`` with whole blocks), for
    iterated known-answer tests where building a cipher per block would dominate."""
    return _ecb(key).encryptor()
