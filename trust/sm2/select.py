"""Pick an SM2 engine by name: "openssl" (libcrypto >= 3.0 through cffi), "pure" (gmssl), "auto"."""

from __future__ import annotations

import threading

from trust.errors import BackendUnavailable
from trust.sm2.backend import SM2Backend
from trust.sm2.openssl import OpenSSLBackend
from trust.sm2.pure import PureBackend

_cache: dict[tuple[str, str | None], SM2Backend] = {}
_lock = threading.RLock()  # re-entrant: "auto" resolves through get_backend


def _create(name: str, libcrypto_path: str | None) -> SM2Backend:
    if name == "pure":
        return PureBackend()
    if name == "openssl":
        return OpenSSLBackend(libcrypto_path)
    if name == "auto":
        try:
            return get_backend("openssl", libcrypto_path)
        except BackendUnavailable:
            return get_backend("pure")
    raise BackendUnavailable(f"unknown SM2 backend {name!r}")


def get_backend(name: str = "auto", libcrypto_path: str | None = None) -> SM2Backend:
    """The backend called ``name``, created once per (name, libcrypto_path) and then reused.

    Raises BackendUnavailable for an unknown name or an engine that cannot load.
    """
    key = (name, libcrypto_path)
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            backend = _create(name, libcrypto_path)
            _cache[key] = backend
        return backend


def available_backends(libcrypto_path: str | None = None) -> list[str]:
    """Names of the engines that load on this machine, preferred first."""
    names = []
    for name in ("openssl", "pure"):
        try:
            get_backend(name, libcrypto_path)
        except BackendUnavailable:
            continue
        names.append(name)
    return names
