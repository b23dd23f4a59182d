"""OpenSSL-engine specifics: loading, selection, thread safety, error queue hygiene."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from trust.errors import BackendUnavailable, DecryptionFailed, InvalidSignature
from trust.sm2.backend import SM2Backend
from trust.sm2.encoding import encode_cipher, parse_cipher
from trust.sm2.openssl import OpenSSLBackend
from trust.sm2.pure import PureBackend
from trust.sm2.select import available_backends, get_backend


@pytest.fixture(scope="module")
def ossl() -> OpenSSLBackend:
    backend = get_backend("openssl")
    assert isinstance(backend, OpenSSLBackend)
    return backend


def _err_queue_empty(backend: OpenSSLBackend) -> bool:
    lib: Any = backend._lib.lib
    return bool(lib.ERR_get_error() == 0)


def test_selection_and_caching() -> None:
    assert available_backends() == ["openssl", "pure"]
    assert get_backend("auto") is get_backend("openssl")
    assert get_backend() is get_backend("auto")
    assert isinstance(get_backend("pure"), PureBackend)
    assert get_backend("pure") is get_backend("pure")
    with pytest.raises(BackendUnavailable):
        get_backend("no-such-engine")


def test_unloadable_libcrypto_is_unavailable(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(BackendUnavailable):
        OpenSSLBackend(os.path.join(tmp_path, "libcrypto-missing.so"))
    # A real library that is not libcrypto: no OpenSSL_version_num symbol.
    with pytest.raises(BackendUnavailable):
        OpenSSLBackend("libc.so.6")


def test_version_is_3(ossl: OpenSSLBackend) -> None:
    assert ossl.version >= 0x30000000


def test_failures_leave_no_errors_and_no_key_bytes_in_messages(ossl: OpenSSLBackend) -> None:
    key = ossl.generate()
    sig = key.sign(b"m")
    with pytest.raises(InvalidSignature):
        key.public_handle().verify(b"other", sig)
    assert _err_queue_empty(ossl)

    x, y, c3, c2 = parse_cipher(key.public_handle().encrypt(b"secret"))
    with pytest.raises(DecryptionFailed) as info:
        key.decrypt(encode_cipher(x, y, bytes(32), c2))
    assert _err_queue_empty(ossl)
    scalar = ossl.private_scalar(key)
    assert scalar.hex() not in str(info.value).lower()
    assert "failed" in info.value.detail


def test_handles_are_thread_safe(ossl: OpenSSLBackend) -> None:
    """Many threads sign and verify with one handle; every result checked by the pure engine."""
    key = ossl.generate()
    public = key.public_handle()
    oracle = PureBackend().load_public(key.public_bytes())
    results: list[tuple[bytes, bytes, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            for i in range(40):
                msg = os.urandom(i)
                signer_id = f"worker-{worker}-{i % 3}".encode()
                sig = key.sign(msg, signer_id)
                public.verify(msg, sig, signer_id)
                with pytest.raises(InvalidSignature):
                    public.verify(msg + b"!", sig, signer_id)
                with lock:
                    results.append((msg, sig, signer_id))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 * 40
    for msg, sig, signer_id in results[::10]:
        oracle.verify(msg, sig, signer_id)


def test_backend_satisfies_protocol(ossl: OpenSSLBackend) -> None:
    backend: SM2Backend = ossl
    assert backend.name == "openssl"
