"""The master key inside a PKCS#11 token (an HSM; SoftHSM2 in tests).

The KEK is an AES-256 secret key generated in the token with
``CKA_SENSITIVE=True``, ``CKA_EXTRACTABLE=False``, ``CKA_TOKEN=True``; it can
encrypt and decrypt, nothing else. Wrapping is ``C_Encrypt`` with
``CKM_AES_GCM`` (random 96-bit nonce, 128-bit tag, AAD = blob header || aad),
so the key never leaves the token and the aad is bound natively. SoftHSM2
also offers ``CKM_AES_KEY_WRAP_PAD``, but ``C_WrapKey`` only wraps key objects
(each data key would first be imported into the token) and RFC 5649 has no
AAD, so the aad would have to be folded into the plaintext by hand.

Sessions: python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module
the application will not call it from several threads at once (SoftHSM2 then
turns its own locking off). So each process opens the module once, keeps one
logged-in R/W session per token, and serialises every call with a per-module
lock; more sessions would add handles, not throughput.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pydantic import SecretStr

from keystore.kek import blob
from trust.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    DecryptionFailed,
    TrustError,
)
from trust.settings import Settings

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib

KEK_ID_PREFIX = "p11:"
_CKA_ID_SIZE = 8

# Errors that mean the token or session is gone, not that the input was bad.
_UNAVAILABLE: tuple[type[p11.PKCS11Error], ...] = (
    p11.DeviceError,
    p11.DeviceMemory,
    p11.DeviceRemoved,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)
_BAD_PIN: tuple[type[p11.PKCS11Error], ...] = (
    p11.PinIncorrect,
    p11.PinInvalid,
    p11.PinLenRange,
    p11.PinExpired,
    p11.PinLocked,
)


@dataclass(frozen=True)
class Pkcs11Config:
    module: Path
    token_label: str
    pin: SecretStr
    kek_label: str = "trust-kek"

    @classmethod
    def from_settings(cls, settings: Settings) -> Pkcs11Config:
        module, token, pin = (
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pkcs11_pin,
        )
        if module is None or token is None or pin is None:
            named = {"MODULE": module, "TOKEN_LABEL": token, "PIN": pin}
            missing = ", ".join(f"TRUST_PKCS11_{k}" for k, v in named.items() if v is None)
            raise ConfigurationError(f"kek_provider=pkcs11 needs {missing}")
        return cls(module=module, token_label=token, pin=pin, kek_label=settings.pkcs11_kek_label)


# --- one module load and one session per token, per process --------------------

_registry_lock = threading.Lock()
_modules: dict[str, _Module] = {}
_tokens: dict[tuple[str, str], _Token] = {}


class _Module:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()  # see the module docstring: calls must not overlap
        self._lib: Pkcs11Lib | None = None
        self._pid = 0

    def lib(self) -> Pkcs11Lib:
        """The loaded module; call with ``self.lock`` held."""
        if self._lib is None:
            try:
                self._lib = pkcs11.lib(self.path)
            except p11.PKCS11Error as exc:
                # Only a path and a loader message: no secret is involved in loading.
                raise ConfigurationError(f"cannot load PKCS#11 module: {exc}") from None
        elif self._pid != os.getpid():
            # A forked child inherits the parent's module state, which PKCS#11
            # says is unusable: the child must initialise the module again.
            self._lib.reinitialize()
        self._pid = os.getpid()
        return self._lib


class _Token:
    def __init__(self, module: _Module, label: str, pin: SecretStr) -> None:
        self._module = module
        self._label = label
        self._pin = pin
        self._session: pkcs11.Session | None = None
        self._pid = 0

    @contextmanager
    def session(self, what: str) -> Iterator[pkcs11.Session]:
        """The token's session, held exclusively; PKCS#11 errors become ``TrustError``s.

        ``what`` names the operation in error messages.
        """
        with self._module.lock:
            try:
                if self._session is None or self._pid != os.getpid():
                    self._session = self._open()
                    self._pid = os.getpid()
                yield self._session
            except TrustError:
                raise
            except _UNAVAILABLE as exc:
                self._session = None  # reopened (and logged in again) on next use
                raise BackendUnavailable(f"{what}: PKCS#11 {type(exc).__name__}") from exc
            except p11.PKCS11Error as exc:
                raise BackendError(f"{what}: PKCS#11 {type(exc).__name__}") from exc

    def _open(self) -> pkcs11.Session:
        lib = self._module.lib()
        try:
            token = lib.get_token(token_label=self._label)
        except p11.NoSuchToken:
            raise BackendUnavailable(f"PKCS#11 token {self._label!r} not found") from None
        except p11.MultipleTokensReturned:
            raise ConfigurationError(
                f"several PKCS#11 tokens are labelled {self._label!r}"
            ) from None
        try:
            return token.open(rw=True, user_pin=self._pin.get_secret_value())
        except p11.UserAlreadyLoggedIn:
            # Login is per application, not per session: another session of this
            # process already logged in, so this one is authenticated too. (The
            # handle of the failed attempt stays open: python-pkcs11 never returns it.)
            return token.open(rw=True)
        except _BAD_PIN as exc:
            raise ConfigurationError(
                f"login to PKCS#11 token {self._label!r} failed: {type(exc).__name__}"
            ) from None


def token_session(config: Pkcs11Config, what: str) -> AbstractContextManager[pkcs11.Session]:
    """Exclusive use of the process's logged-in session to ``config``'s token."""
    key = (str(config.module), config.token_label)
    with _registry_lock:
        token = _tokens.get(key)
        if token is None:
            module = _modules.setdefault(key[0], _Module(key[0]))
            token = _tokens[key] = _Token(module, config.token_label, config.pin)
    return token.session(what)


# --- the KEK -----------------------------------------------------------------------


class Pkcs11Kek:
    """A ``KekProvider`` whose master key never leaves the token.

    The KEK is found by label, and created if absent, on first use. Its kek id
    is ``p11:`` + its ``CKA_ID``; ``unwrap`` finds the key by that id, so a blob
    stays readable whichever key of the label made it.
    """

    def __init__(self, config: Pkcs11Config) -> None:
        self._config = config
        self._kek_id: str | None = None

    @property
    def kek_id(self) -> str:
        if self._kek_id is None:
            with token_session(self._config, "find the PKCS#11 KEK") as session:
                if self._kek_id is None:  # another thread may have found it meanwhile
                    key = _ensure_kek(session, self._config.kek_label)
                    self._kek_id = KEK_ID_PREFIX + bytes(key[Attribute.ID]).hex()
        return self._kek_id

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        blob.check_data_key(data_key)
        kek_id = self.kek_id
        header = blob.header(kek_id)
        nonce = os.urandom(blob.NONCE_SIZE)
        with token_session(self._config, "wrap a data key") as session:
            key = self._find(session, kek_id)
            if key is None:
                raise BackendUnavailable("the PKCS#11 KEK has disappeared from the token")
            if not isinstance(key, pkcs11.EncryptMixin):
                raise ConfigurationError("the PKCS#11 KEK may not encrypt (CKA_ENCRYPT false)")
            sealed = _one_shot(
                key.encrypt(
                    data_key,
                    mechanism=Mechanism.AES_GCM,
                    mechanism_param=pkcs11.GCMParams(nonce, header + aad),
                )
            )
        return header + nonce + sealed

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        parsed = blob.parse(wrapped)
        with token_session(self._config, "unwrap a data key") as session:
            key = self._find(session, parsed.kek_id)
            if key is None:
                raise DecryptionFailed("wrapped under another master key", kek_id=parsed.kek_id)
            if not isinstance(key, pkcs11.DecryptMixin):
                raise ConfigurationError("the PKCS#11 KEK may not decrypt (CKA_DECRYPT false)")
            try:
                return _one_shot(
                    key.decrypt(
                        parsed.sealed,
                        mechanism=Mechanism.AES_GCM,
                        mechanism_param=pkcs11.GCMParams(parsed.nonce, parsed.header + aad),
                    )
                )
            except _UNAVAILABLE:
                raise
            except p11.PKCS11Error:
                # A bad tag is CKR_ENCRYPTED_DATA_INVALID in the standard but
                # CKR_GENERAL_ERROR in SoftHSM2; with a valid key and session
                # every remaining failure is the blob's.
                raise DecryptionFailed("AES-GCM authentication failed") from None

    def describe(self) -> Mapping[str, str]:
        return {
            "provider": "pkcs11",
            "kek_id": self.kek_id,
            "algorithm": "AES-256-GCM (CKM_AES_GCM)",
            "module": str(self._config.module),
            "token": self._config.token_label,
            "key_label": self._config.kek_label,
        }

    def __repr__(self) -> str:
        cfg = self._config
        return f"Pkcs11Kek(token={cfg.token_label!r}, key_label={cfg.kek_label!r})"

    def _find(self, session: pkcs11.Session, kek_id: str) -> pkcs11.SecretKey | None:
        if not kek_id.startswith(KEK_ID_PREFIX):
            return None
        try:
            cka_id = bytes.fromhex(kek_id.removeprefix(KEK_ID_PREFIX))
        except ValueError:
            return None
        keys = _secret_keys(session, self._config.kek_label, cka_id)
        if not keys:
            return None
        _check_kek(keys[0])
        return keys[0]


def _one_shot(result: bytes | Iterator[bytes]) -> bytes:
    # python-pkcs11 returns bytes for bytes input; its annotation also covers streaming.
    assert isinstance(result, bytes)
    return result


def _secret_keys(
    session: pkcs11.Session, label: str, cka_id: bytes | None = None
) -> list[pkcs11.SecretKey]:
    template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
    if cka_id is not None:
        template[Attribute.ID] = cka_id
    return [obj for obj in session.get_objects(template) if isinstance(obj, pkcs11.SecretKey)]


def _ensure_kek(session: pkcs11.Session, label: str) -> pkcs11.SecretKey:
    keys = _secret_keys(session, label)
    if not keys:
        session.generate_key(
            KeyType.AES,
            256,
            id=os.urandom(_CKA_ID_SIZE),
            label=label,
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,
            },
        )
        # Another process may have created one at the same moment: all pick the
        # lowest CKA_ID, and none is destroyed, so no blob is ever orphaned.
        keys = _secret_keys(session, label)
    key = min(keys, key=lambda k: bytes(k[Attribute.ID]))
    _check_kek(key)
    return key


def _check_kek(key: pkcs11.SecretKey) -> None:
    """Refuse a KEK that could leave the token (e.g. one an operator imported by hand)."""
    attrs = key.get_attributes(
        [Attribute.KEY_TYPE, Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.ID]
    )
    if attrs[Attribute.KEY_TYPE] != KeyType.AES or not attrs[Attribute.ID]:
        raise ConfigurationError(f"PKCS#11 KEK {key.label!r} must be an AES key with a CKA_ID")
    if not attrs[Attribute.SENSITIVE] or attrs[Attribute.EXTRACTABLE]:
        raise ConfigurationError(
            f"PKCS#11 KEK {key.label!r} is extractable or not sensitive; refusing to use it"
        )
