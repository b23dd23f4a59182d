"""ECDSA (P-256, P-384) and RSA keys, wrapping pyca/cryptography objects.

These exist for interoperability with international clients (pyHanko, OpenSSL
``ts -verify``, PDF readers). Signatures: ECDSA DER with SHA-256 (P-256) or
SHA-384 (P-384); RSA PKCS#1 v1.5 (default) or PSS with SHA-256, MGF1-SHA-256 and
a 32-byte salt. Encryption: RSA-OAEP with SHA-256; ECDSA keys do not encrypt.
"""

from __future__ import annotations

from cryptography import exceptions as pyca_exceptions
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from trust.errors import (
    DecryptionFailed,
    InvalidLength,
    InvalidSignature,
    InvalidSignatureEncoding,
    UnsupportedAlgorithm,
)
from trust.keys.base import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    SignatureScheme,
    check_digest,
    no_scheme,
    no_signer_id,
)

EC_CURVES: dict[str, KeyAlgorithm] = {
    "secp256r1": KeyAlgorithm.ECDSA_P256,
    "secp384r1": KeyAlgorithm.ECDSA_P384,
}
_EC_HASH: dict[KeyAlgorithm, type[hashes.SHA256] | type[hashes.SHA384]] = {
    KeyAlgorithm.ECDSA_P256: hashes.SHA256,
    KeyAlgorithm.ECDSA_P384: hashes.SHA384,
}
_EC_CURVE_OBJECTS: dict[KeyAlgorithm, ec.EllipticCurve] = {
    KeyAlgorithm.ECDSA_P256: ec.SECP256R1(),
    KeyAlgorithm.ECDSA_P384: ec.SECP384R1(),
}
RSA_SIZES: dict[int, KeyAlgorithm] = {
    2048: KeyAlgorithm.RSA_2048,
    3072: KeyAlgorithm.RSA_3072,
    4096: KeyAlgorithm.RSA_4096,
}
_RSA_BITS = {alg: bits for bits, alg in RSA_SIZES.items()}
_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, pem: bool) -> bytes:
    return key.public_bytes(_PEM if pem else _DER, _SPKI)


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, pem: bool) -> bytes:
    return key.private_bytes(
        _PEM if pem else _DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ec_algorithm(curve: ec.EllipticCurve) -> KeyAlgorithm:
    try:
        return EC_CURVES[curve.name]
    except KeyError:
        raise UnsupportedAlgorithm(f"elliptic curve {curve.name} is not supported") from None


def rsa_algorithm(key_size: int) -> KeyAlgorithm:
    try:
        return RSA_SIZES[key_size]
    except KeyError:
        raise UnsupportedAlgorithm(f"RSA keys of {key_size} bits are not supported") from None


# --- ECDSA --------------------------------------------------------------------------


def _check_ecdsa_der(signature: bytes) -> None:
    """Report a signature that is not DER SEQUENCE{r, s} as malformed, not as a failed
    verification (pyca folds both into InvalidSignature)."""
    try:
        utils.decode_dss_signature(signature)
    except ValueError:
        raise InvalidSignatureEncoding("ECDSA signature is not a DER SEQUENCE { r, s }") from None


class ECDSAPublicKey(PublicKey):
    __slots__ = ("_algorithm", "_key")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._algorithm = ec_algorithm(key.curve)
        self._key = key

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_bytes_spki(self, pem: bool = False) -> bytes:
        return _spki(self._key, pem)

    def _verify(self, signature: bytes, data: bytes, algorithm: ec.ECDSA) -> None:
        _check_ecdsa_der(signature)
        try:
            self._key.verify(signature, data, algorithm)
        except pyca_exceptions.InvalidSignature:
            raise InvalidSignature() from None

    def verify(
        self,
        signature: bytes,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> None:
        no_signer_id(self._algorithm, signer_id)
        no_scheme(self._algorithm, scheme)
        self._verify(signature, message, ec.ECDSA(_EC_HASH[self._algorithm]()))

    def verify_digest(
        self, signature: bytes, digest: bytes, *, scheme: SignatureScheme | None = None
    ) -> None:
        no_scheme(self._algorithm, scheme)
        hash_algorithm = _EC_HASH[self._algorithm]()
        check_digest(digest, hash_algorithm.digest_size)
        self._verify(signature, digest, ec.ECDSA(utils.Prehashed(hash_algorithm)))

    def encrypt(self, plaintext: bytes) -> bytes:
        raise UnsupportedAlgorithm(f"{self._algorithm} keys do not encrypt")


class ECDSAPrivateKey(PrivateKey):
    __slots__ = ("_algorithm", "_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._algorithm = ec_algorithm(key.curve)
        self._key = key
        self._public = ECDSAPublicKey(key.public_key())

    @classmethod
    def generate(cls, algorithm: KeyAlgorithm) -> ECDSAPrivateKey:
        return cls(ec.generate_private_key(_EC_CURVE_OBJECTS[algorithm]))

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_key(self) -> ECDSAPublicKey:
        return self._public

    def private_bytes_pkcs8(self, pem: bool = False) -> bytes:
        return _pkcs8(self._key, pem)

    def sign(
        self,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> bytes:
        no_signer_id(self._algorithm, signer_id)
        no_scheme(self._algorithm, scheme)
        return self._key.sign(message, ec.ECDSA(_EC_HASH[self._algorithm]()))

    def sign_digest(self, digest: bytes, *, scheme: SignatureScheme | None = None) -> bytes:
        no_scheme(self._algorithm, scheme)
        hash_algorithm = _EC_HASH[self._algorithm]()
        check_digest(digest, hash_algorithm.digest_size)
        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(hash_algorithm)))

    def decrypt(self, ciphertext: bytes) -> bytes:
        raise UnsupportedAlgorithm(f"{self._algorithm} keys do not decrypt")


# --- RSA ----------------------------------------------------------------------------

_SHA256_SIZE = 32


def _rsa_padding(scheme: SignatureScheme | None, *, verifying: bool) -> padding.AsymmetricPadding:
    if scheme is None or scheme is SignatureScheme.RSA_PKCS1V15:
        return padding.PKCS1v15()
    if scheme is SignatureScheme.RSA_PSS:
        # Sign with salt = hash length (RFC 4055's recommendation); accept any salt
        # when verifying, as OpenSSL signs with the maximum salt length by default.
        salt = padding.PSS.AUTO if verifying else _SHA256_SIZE
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    raise UnsupportedAlgorithm(f"signature scheme {scheme} does not apply to RSA keys")


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class RSAPublicKey(PublicKey):
    __slots__ = ("_algorithm", "_key")

    def __init__(self, key: rsa.RSAPublicKey) -> None:
        self._algorithm = rsa_algorithm(key.key_size)
        self._key = key

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_bytes_spki(self, pem: bool = False) -> bytes:
        return _spki(self._key, pem)

    def _verify(
        self,
        signature: bytes,
        data: bytes,
        scheme: SignatureScheme | None,
        hash_algorithm: hashes.HashAlgorithm | utils.Prehashed,
    ) -> None:
        pad = _rsa_padding(scheme, verifying=True)
        try:
            self._key.verify(signature, data, pad, hash_algorithm)
        except pyca_exceptions.InvalidSignature:
            raise InvalidSignature() from None

    def verify(
        self,
        signature: bytes,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> None:
        no_signer_id(self._algorithm, signer_id)
        self._verify(signature, message, scheme, hashes.SHA256())

    def verify_digest(
        self, signature: bytes, digest: bytes, *, scheme: SignatureScheme | None = None
    ) -> None:
        check_digest(digest, _SHA256_SIZE)
        self._verify(signature, digest, scheme, utils.Prehashed(hashes.SHA256()))

    def encrypt(self, plaintext: bytes) -> bytes:
        try:
            return self._key.encrypt(plaintext, _oaep())
        except ValueError:
            raise InvalidLength("message too long for RSA-OAEP with this key") from None


class RSAPrivateKey(PrivateKey):
    __slots__ = ("_algorithm", "_key", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._algorithm = rsa_algorithm(key.key_size)
        self._key = key
        self._public = RSAPublicKey(key.public_key())

    @classmethod
    def generate(cls, algorithm: KeyAlgorithm) -> RSAPrivateKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[algorithm]))

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_key(self) -> RSAPublicKey:
        return self._public

    def private_bytes_pkcs8(self, pem: bool = False) -> bytes:
        return _pkcs8(self._key, pem)

    def sign(
        self,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> bytes:
        no_signer_id(self._algorithm, signer_id)
        return self._key.sign(message, _rsa_padding(scheme, verifying=False), hashes.SHA256())

    def sign_digest(self, digest: bytes, *, scheme: SignatureScheme | None = None) -> bytes:
        check_digest(digest, _SHA256_SIZE)
        pad = _rsa_padding(scheme, verifying=False)
        return self._key.sign(digest, pad, utils.Prehashed(hashes.SHA256()))

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._key.decrypt(ciphertext, _oaep())
        except ValueError:
            raise DecryptionFailed("RSA-OAEP ciphertext does not decrypt") from None
