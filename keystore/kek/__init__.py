"""The master key (KEK) layer: wraps and unwraps data keys under a master key.

Two providers: ``local`` (an SM4 key from a file or the environment) and
``pkcs11`` (a non-extractable AES key inside an HSM). Both produce the blob
format of ``keystore.kek.blob``, which names the KEK that made it, so a store
can hold blobs from several KEKs while the master key is being rotated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from keystore.kek.blob import kek_id_of
from keystore.kek.local import kek_from_secret, load_local_master_key
from trust.settings import Settings

__all__ = ["KekProvider", "build_kek_provider", "kek_id_of"]


class KekProvider(Protocol):
    @property
    def kek_id(self) -> str:
        """Names the master key (never reveals it); written into every blob this provider makes."""
        ...

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``data_key``, bound to ``aad`` (e.g. the key record id)."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Inverse of ``wrap``; ``DecryptionFailed`` on any tamper, wrong aad or wrong KEK."""
        ...

    def describe(self) -> Mapping[str, str]:
        """Non-secret facts for status pages and logs (provider, kek id, where the key lives)."""
        ...


def build_kek_provider(settings: Settings) -> KekProvider:
    """The provider the settings select. The local key file must already exist."""
    if settings.kek_provider == "pkcs11":
        # Imported here so python-pkcs11 is loaded only where an HSM is configured.
        from keystore.kek.pkcs11 import Pkcs11Config, Pkcs11Kek

        return Pkcs11Kek(Pkcs11Config.from_settings(settings))
    if settings.master_key is not None:
        return kek_from_secret(settings.master_key)
    return load_local_master_key(settings.effective_master_key_file)
