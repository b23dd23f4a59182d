"""SM2 keys: the backend-handle wrappers and their PKCS#8 / SPKI / SEC1 encodings.

pyca/cryptography cannot load or write SM2 keys (it has no SM2 curve), so the
GM/T 0009 / GM/T 0015 structures are built and parsed here with asn1crypto:
id-ecPublicKey with the namedCurve sm2p256v1 (1.2.156.10197.1.301), which is
what OpenSSL 3 writes and reads (``openssl pkey`` shows "ASN1 OID: SM2").

The arithmetic comes from an ``SM2Backend`` (``trust.sm2``): the process-wide
default is chosen once at start-up with ``configure_sm2_backend``; any call can
pass another backend explicitly (tests use this to cross-check engines).
"""

from __future__ import annotations

import hmac
import threading

from asn1crypto import keys as asn1_keys

from trust import oids
from trust.errors import InvalidKey, InvalidLength, UnsupportedAlgorithm
from trust.keys.base import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    SignatureScheme,
    check_digest,
    no_scheme,
    to_pem,
)
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend, SM2PrivateHandle, SM2PublicHandle
from trust.sm2.select import get_backend

SCALAR_BYTES = 32
POINT_BYTES = 65
DIGEST_BYTES = 32

_lock = threading.Lock()
_default: tuple[str, str | None] = ("auto", None)


def configure_sm2_backend(name: str = "auto", libcrypto_path: str | None = None) -> SM2Backend:
    """Choose the SM2 engine used when a call passes none; done once at start-up from
    ``Settings.sm2_backend`` / ``Settings.libcrypto_path``. Fails now, not at first use,
    when the engine cannot load."""
    global _default
    backend = get_backend(name, libcrypto_path)
    with _lock:
        _default = (name, libcrypto_path)
    return backend


def default_sm2_backend() -> SM2Backend:
    with _lock:
        name, path = _default
    return get_backend(name, path)


def _backend(backend: SM2Backend | None) -> SM2Backend:
    return backend if backend is not None else default_sm2_backend()


def _signer_id(signer_id: bytes | None) -> bytes:
    return DEFAULT_SIGNER_ID if signer_id is None else signer_id


class SM2PublicKey(PublicKey):
    __slots__ = ("_backend", "_handle")

    def __init__(self, handle: SM2PublicHandle, backend: SM2Backend) -> None:
        self._handle = handle
        self._backend = backend

    @classmethod
    def from_point(cls, point: bytes, backend: SM2Backend | None = None) -> SM2PublicKey:
        """From the 65-byte uncompressed point 04||X||Y (GM/T 0009 SM2PublicKey content)."""
        if len(point) != POINT_BYTES or point[0] != 4:
            raise InvalidKey("SM2 public key must be the 65-byte uncompressed point 04||X||Y")
        b = _backend(backend)
        return cls(b.load_public(point), b)

    @property
    def algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.SM2

    @property
    def backend(self) -> SM2Backend:
        return self._backend

    def point(self) -> bytes:
        return self._handle.public_bytes()

    def public_bytes_spki(self, pem: bool = False) -> bytes:
        der = spki_der(self.point())
        return to_pem("PUBLIC KEY", der) if pem else der

    def verify(
        self,
        signature: bytes,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> None:
        no_scheme(self.algorithm, scheme)
        self._handle.verify(message, signature, _signer_id(signer_id))

    def verify_digest(
        self, signature: bytes, digest: bytes, *, scheme: SignatureScheme | None = None
    ) -> None:
        no_scheme(self.algorithm, scheme)
        check_digest(digest, DIGEST_BYTES)
        self._handle.verify_digest(digest, signature)

    def encrypt(self, plaintext: bytes) -> bytes:
        if not plaintext:
            # GM/T 0003.4 needs at least one byte: the KDF output length would be zero.
            raise InvalidLength("SM2 cannot encrypt an empty message")
        return self._handle.encrypt(plaintext)


class SM2PrivateKey(PrivateKey):
    __slots__ = ("_backend", "_handle", "_public")

    def __init__(self, handle: SM2PrivateHandle, backend: SM2Backend) -> None:
        self._handle = handle
        self._backend = backend
        self._public = SM2PublicKey(handle.public_handle(), backend)

    @classmethod
    def generate(cls, backend: SM2Backend | None = None) -> SM2PrivateKey:
        b = _backend(backend)
        return cls(b.generate(), b)

    @classmethod
    def from_scalar(cls, scalar: bytes, backend: SM2Backend | None = None) -> SM2PrivateKey:
        """From the 32-byte big-endian scalar d (GM/T 0009 SM2PrivateKey), 0 < d < n-1."""
        if len(scalar) != SCALAR_BYTES:
            raise InvalidKey("SM2 private key must be a 32-byte scalar")
        b = _backend(backend)
        return cls(b.load_private(scalar), b)

    @property
    def algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.SM2

    @property
    def backend(self) -> SM2Backend:
        return self._backend

    def public_key(self) -> SM2PublicKey:
        return self._public

    def scalar(self) -> bytes:
        """The 32-byte scalar d. Keystore use only: never log or return it."""
        return self._backend.private_scalar(self._handle)

    def private_bytes_pkcs8(self, pem: bool = False) -> bytes:
        der = pkcs8_der(self.scalar(), self._public.point())
        return to_pem("PRIVATE KEY", der) if pem else der

    def sign(
        self,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> bytes:
        no_scheme(self.algorithm, scheme)
        return self._handle.sign(message, _signer_id(signer_id))

    def sign_digest(self, digest: bytes, *, scheme: SignatureScheme | None = None) -> bytes:
        no_scheme(self.algorithm, scheme)
        check_digest(digest, DIGEST_BYTES)
        return self._handle.sign_digest(digest)

    def decrypt(self, ciphertext: bytes) -> bytes:
        return self._handle.decrypt(ciphertext)


# --- encodings ---------------------------------------------------------------------


def _ec_algorithm(
    cls: type[asn1_keys.PublicKeyAlgorithm] | type[asn1_keys.PrivateKeyAlgorithm],
) -> asn1_keys.PublicKeyAlgorithm | asn1_keys.PrivateKeyAlgorithm:
    return cls(
        {
            "algorithm": "ec",
            "parameters": asn1_keys.ECDomainParameters(
                name="named", value=asn1_keys.NamedCurve(oids.SM2_CURVE_NAME)
            ),
        }
    )


def spki_der(point: bytes) -> bytes:
    """SubjectPublicKeyInfo: id-ecPublicKey, namedCurve sm2p256v1, BIT STRING 04||X||Y."""
    info = asn1_keys.PublicKeyInfo(
        {
            "algorithm": _ec_algorithm(asn1_keys.PublicKeyAlgorithm),
            "public_key": asn1_keys.ECPointBitString(point),
        }
    )
    return info.dump()


def pkcs8_der(scalar: bytes, point: bytes) -> bytes:
    """PKCS#8 PrivateKeyInfo around an RFC 5915 ECPrivateKey carrying d and the public point.

    The curve is named once, in the PKCS#8 algorithm, as OpenSSL writes it.
    """
    ec_key = asn1_keys.ECPrivateKey(
        {
            "version": "ecPrivkeyVer1",
            "private_key": int.from_bytes(scalar, "big"),
            "public_key": asn1_keys.ECPointBitString(point),
        }
    )
    info = asn1_keys.PrivateKeyInfo(
        {
            "version": 0,
            "private_key_algorithm": _ec_algorithm(asn1_keys.PrivateKeyAlgorithm),
            "private_key": ec_key,
        }
    )
    return info.dump()


def curve_oid(params: asn1_keys.ECDomainParameters | None) -> str | None:
    """The dotted named-curve OID of EC parameters; None when absent.

    Explicit (specified) curves and implicitCA are refused: a key must name its curve.
    """
    if params is None or params.native is None:
        return None
    if params.name != "named":
        raise UnsupportedAlgorithm("EC keys must use a named curve")
    dotted: str = params.chosen.dotted
    return dotted


def ec_private_key_to_sm2(
    ec_key: asn1_keys.ECPrivateKey,
    outer_curve: str | None,
    backend: SM2Backend | None,
) -> SM2PrivateKey:
    """An SM2 key from a parsed ECPrivateKey; the caller has checked the curve is SM2.

    Encoders disagree on the width of the private key OCTET STRING (some strip
    leading zeros, GM/T 0009 calls it an INTEGER), so it is left-padded to 32 bytes.
    If the structure also names a curve or carries the public point, both must agree.
    """
    inner_curve = curve_oid(ec_key["parameters"])
    if inner_curve is not None and outer_curve is not None and inner_curve != outer_curve:
        raise InvalidKey("EC private key names two different curves")
    d = ec_key["private_key"].native
    if not isinstance(d, int) or d <= 0 or d.bit_length() > 8 * SCALAR_BYTES:
        raise InvalidKey("SM2 private scalar is out of range")
    key = SM2PrivateKey.from_scalar(d.to_bytes(SCALAR_BYTES, "big"), backend)
    embedded = ec_key["public_key"].native
    if embedded is not None and not hmac.compare_digest(embedded, key.public_key().point()):
        raise InvalidKey("EC private key carries a public key that does not match it")
    return key
