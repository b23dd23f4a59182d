"""The wrapped-key blob format shared by every KEK provider.

    version (1 byte) | len(kek_id) (1 byte) | kek_id (ASCII) | nonce (12) | ciphertext | tag (16)

The header (version, kek id) is self-delimiting and is authenticated: providers
pass ``header || aad`` as the GCM additional data, so a blob cannot be
relabelled to another KEK, and because the header has its own length prefix
the concatenation with the caller's aad is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trust.errors import DecryptionFailed, InvalidLength

VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_KEK_ID = 64
# The kek id read from a blob ends up in error details and logs: no control characters.
_KEK_ID = re.compile(rf"[A-Za-z0-9:._-]{{1,{MAX_KEK_ID}}}")
# Data keys, SM2/ECDSA scalars, RSA private keys in DER: all well under this. The
# bound keeps the KEK (and an HSM) from being used to encrypt bulk data.
MAX_DATA_KEY = 8192


@dataclass(frozen=True)
class ParsedBlob:
    kek_id: str
    header: bytes
    nonce: bytes
    sealed: bytes  # ciphertext || tag


def check_data_key(data_key: bytes) -> None:
    if not 1 <= len(data_key) <= MAX_DATA_KEY:
        raise InvalidLength(f"data key must be 1..{MAX_DATA_KEY} bytes, got {len(data_key)}")


def header(kek_id: str) -> bytes:
    if not _KEK_ID.fullmatch(kek_id):
        raise ValueError(f"kek id must be 1..{MAX_KEK_ID} of [A-Za-z0-9:._-]")
    return bytes([VERSION, len(kek_id)]) + kek_id.encode("ascii")


def parse(wrapped: bytes) -> ParsedBlob:
    """Split a blob; anything malformed is ``DecryptionFailed`` like any other tamper."""
    if len(wrapped) < 2:
        raise DecryptionFailed("wrapped key is truncated")
    if wrapped[0] != VERSION:
        raise DecryptionFailed(f"unsupported wrapped-key format version {wrapped[0]}")
    end = 2 + wrapped[1]
    if wrapped[1] == 0 or len(wrapped) < end + NONCE_SIZE + TAG_SIZE + 1:
        raise DecryptionFailed("wrapped key is truncated")
    kek_id = wrapped[2:end].decode("ascii", errors="replace")
    if not _KEK_ID.fullmatch(kek_id):
        raise DecryptionFailed("wrapped key has a malformed header")
    return ParsedBlob(
        kek_id=kek_id,
        header=wrapped[:end],
        nonce=wrapped[end : end + NONCE_SIZE],
        sealed=wrapped[end + NONCE_SIZE :],
    )


def kek_id_of(wrapped: bytes) -> str:
    """Which KEK wrapped this blob (what master-key rotation needs to know); no key needed."""
    return parse(wrapped).kek_id
