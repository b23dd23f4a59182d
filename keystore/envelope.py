"""Envelope encryption of key material: what is stored is never the key itself.

Each version's secret (PKCS#8 DER of a key pair, or the 16 raw bytes of an SM4
key) is encrypted with its own random SM4 data key in GCM mode; the data key is
wrapped by the master key (a ``KekProvider``). Both layers authenticate the same
associated data, naming the key id, the version and the algorithm, so a sealed
blob copied onto another row (or another version) fails to open instead of
quietly becoming that key.

Master-key rotation only rewraps the data key: the sealed secret is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from keystore.kek import KekProvider, kek_id_of
from trust import sm4
from trust.errors import ConfigurationError, DecryptionFailed

_AAD_LABEL = b"trust-keystore sealed-key v1\x00"


def aad(key_id: str, version: int, algorithm: str) -> bytes:
    # NUL-separated: none of the three parts can contain NUL.
    return _AAD_LABEL + f"{key_id}\x00{version}\x00{algorithm}".encode("ascii")


@dataclass(frozen=True)
class Sealed:
    sealed_key: bytes  # nonce || SM4-GCM ciphertext || tag
    wrapped_data_key: bytes
    kek_id: str


class KekRing:
    """The current master key (wraps everything new) and earlier ones still able to
    unwrap, looked up by the kek id each wrapped blob carries."""

    def __init__(self, current: KekProvider, previous: Iterable[KekProvider] = ()) -> None:
        self.current = current
        self._by_id = {k.kek_id: k for k in previous}
        self._by_id[current.kek_id] = current

    def provider_for(self, wrapped: bytes) -> KekProvider:
        kek_id = kek_id_of(wrapped)
        provider = self._by_id.get(kek_id)
        if provider is None:
            raise ConfigurationError(
                f"a key is wrapped under master key {kek_id}, which is not configured"
            )
        return provider

    def unwrap(self, wrapped: bytes, associated: bytes) -> bytes:
        return self.provider_for(wrapped).unwrap(wrapped, associated)


def seal(ring: KekRing, secret: bytes, associated: bytes) -> Sealed:
    data_key = os.urandom(sm4.KEY_SIZE)
    nonce = os.urandom(sm4.GCM_NONCE_SIZE)
    sealed = nonce + sm4.gcm_encrypt(data_key, nonce, secret, associated)
    return Sealed(sealed, ring.current.wrap(data_key, associated), ring.current.kek_id)


def open_sealed(ring: KekRing, sealed_key: bytes, wrapped: bytes, associated: bytes) -> bytes:
    data_key = ring.unwrap(wrapped, associated)
    if len(sealed_key) < sm4.GCM_NONCE_SIZE + sm4.GCM_TAG_SIZE:
        raise DecryptionFailed("sealed key is truncated")
    nonce, body = sealed_key[: sm4.GCM_NONCE_SIZE], sealed_key[sm4.GCM_NONCE_SIZE :]
    return sm4.gcm_decrypt(data_key, nonce, body, associated)


def rewrap(ring: KekRing, wrapped: bytes, associated: bytes) -> bytes:
    """The same data key, wrapped under the current master key."""
    return ring.current.wrap(ring.unwrap(wrapped, associated), associated)
