"""The local master key: a 128-bit SM4 key from a file under ``var/`` or from settings.

Wrapping is SM4-GCM with a random 96-bit nonce; the aad (and the blob header)
are authenticated. Random nonces are safe here because one KEK wraps few keys
(NIST SP 800-38D allows 2**32 random-nonce encryptions per key).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from keystore.kek import blob
from trust import sm4
from trust.errors import ConfigurationError, DecryptionFailed
from trust.sm3 import sm3

KEY_SIZE = sm4.KEY_SIZE
# Domain separation: the fingerprint must not equal an SM3 of the key used anywhere else.
_FINGERPRINT_LABEL = b"trust-service kek-id v1\x00"


class LocalKek:
    """A ``KekProvider`` holding the SM4 master key in process memory."""

    __slots__ = ("_key", "_kek_id", "_source")

    def __init__(self, key: bytes, *, source: str) -> None:
        if len(key) != KEY_SIZE:
            raise ConfigurationError(f"the master key must be {KEY_SIZE} bytes")
        self._key = key
        self._kek_id = "sm4:" + sm3(_FINGERPRINT_LABEL + key)[:8].hex()
        self._source = source

    @property
    def kek_id(self) -> str:
        return self._kek_id

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        blob.check_data_key(data_key)
        header = blob.header(self._kek_id)
        nonce = os.urandom(blob.NONCE_SIZE)
        return header + nonce + sm4.gcm_encrypt(self._key, nonce, data_key, header + aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        parsed = blob.parse(wrapped)
        if parsed.kek_id != self._kek_id:
            raise DecryptionFailed("wrapped under another master key", kek_id=parsed.kek_id)
        return sm4.gcm_decrypt(self._key, parsed.nonce, parsed.sealed, parsed.header + aad)

    def describe(self) -> Mapping[str, str]:
        return {
            "provider": "local",
            "kek_id": self._kek_id,
            "algorithm": "SM4-GCM",
            "source": self._source,
        }

    def __repr__(self) -> str:
        return f"LocalKek(kek_id={self._kek_id!r}, source={self._source!r})"


def _parse_hex(text: str, where: str) -> bytes:
    # The message names where the key came from, never its value.
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigurationError(f"{where} is not hex") from None
    if len(key) != KEY_SIZE:
        raise ConfigurationError(f"{where} must hold {KEY_SIZE * 2} hex digits")
    return key


def kek_from_secret(secret: SecretStr) -> LocalKek:
    """The master key given in settings (``TRUST_MASTER_KEY``)."""
    return LocalKek(_parse_hex(secret.get_secret_value(), "TRUST_MASTER_KEY"), source="env")


def load_local_master_key(path: Path) -> LocalKek:
    """Read a key file; refuse one that group or others can access."""
    try:
        # O_NOFOLLOW + fstat: the mode checked is the mode of the file actually read.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ConfigurationError(
            f"master key file {path} does not exist; create it with create_local_master_key"
            " (trustctl init) or set TRUST_MASTER_KEY"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot open master key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigurationError(f"master key file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigurationError(
                f"master key file {path} is accessible by group or others"
                f" (mode {stat.S_IMODE(st.st_mode):04o}); run chmod 600 on it"
            )
        text = fh.read(4 * KEY_SIZE)
    return LocalKek(_parse_hex(text, f"master key file {path}"), source=f"file:{path}")


def create_local_master_key(path: Path) -> LocalKek:
    """Create a new random master key file (mode 0600); never overwrites an existing one.

    The key is written to a temporary file in the same directory, flushed, then
    hard-linked into place: the link is atomic and fails if ``path`` exists, so
    a crash or a concurrent call can never leave a partial key or replace a key
    that data is already wrapped under.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = os.urandom(KEY_SIZE)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ConfigurationError(f"master key file {path} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return LocalKek(key, source=f"file:{path}")
