"""SM3 hash and HMAC-SM3 (GM/T 0004), from ``cryptography``.

``hashlib.new('sm3')`` exists only where the system OpenSSL provides SM3, so
the service always goes through ``cryptography``, which bundles it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import constant_time, hashes, hmac

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class SM3:
    """Incremental SM3, for streaming large inputs."""

    digest_size = DIGEST_SIZE

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashes.Hash(hashes.SM3())
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> SM3:
        clone = SM3.__new__(SM3)
        clone._h = self._h.copy()
        return clone

    def digest(self) -> bytes:
        return self._h.copy().finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    m = hmac.HMAC(key, hashes.SM3())
    m.update(data)
    return m.finalize()


def hmac_sm3_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    """Constant-time check of an HMAC-SM3 tag."""
    return constant_time.bytes_eq(hmac_sm3(key, data), tag)
