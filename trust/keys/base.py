"""What every key type shares: the algorithm enum, the two abstract key classes, the
fingerprint and the strict DER parse that turns asn1crypto failures into trust errors."""

from __future__ import annotations

import abc
import base64
import re
from enum import StrEnum
from typing import TypeVar

from asn1crypto import core, pem

from trust.errors import InvalidLength, MalformedASN1, MalformedEncoding, UnsupportedAlgorithm
from trust.sm3 import sm3


class KeyAlgorithm(StrEnum):
    SM2 = "sm2"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"


class SignatureScheme(StrEnum):
    """RSA signature padding. SM2 and ECDSA have one scheme each and take ``None``."""

    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"


class PublicKey(abc.ABC):
    """A public key of any supported algorithm. Verification raises, never returns False."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def algorithm(self) -> KeyAlgorithm: ...

    @abc.abstractmethod
    def public_bytes_spki(self, pem: bool = False) -> bytes:
        """SubjectPublicKeyInfo, DER or PEM ("PUBLIC KEY")."""

    @abc.abstractmethod
    def verify(
        self,
        signature: bytes,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> None:
        """Raise ``InvalidSignature`` (or ``InvalidSignatureEncoding``) unless ``signature``
        is a valid signature of ``message``."""

    @abc.abstractmethod
    def verify_digest(
        self, signature: bytes, digest: bytes, *, scheme: SignatureScheme | None = None
    ) -> None:
        """Like ``verify`` over a precomputed digest (SM2: e = SM3(Z || M))."""

    @abc.abstractmethod
    def encrypt(self, plaintext: bytes) -> bytes:
        """SM2: GM/T 0009 SM2Cipher DER. RSA: OAEP with SHA-256. ECDSA: unsupported."""

    def fingerprint(self) -> str:
        return public_key_fingerprint(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.public_bytes_spki() == other.public_bytes_spki()

    def __hash__(self) -> int:
        return hash(self.public_bytes_spki())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm} {self.fingerprint()[:16]}>"


class PrivateKey(abc.ABC):
    """A private key of any supported algorithm. Its repr and errors never show key bytes."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def algorithm(self) -> KeyAlgorithm: ...

    @abc.abstractmethod
    def public_key(self) -> PublicKey: ...

    @abc.abstractmethod
    def private_bytes_pkcs8(self, pem: bool = False) -> bytes:
        """Unencrypted PKCS#8, DER or PEM ("PRIVATE KEY"). Keystore use only."""

    def public_bytes_spki(self, pem: bool = False) -> bytes:
        return self.public_key().public_bytes_spki(pem)

    @abc.abstractmethod
    def sign(
        self,
        message: bytes,
        *,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> bytes:
        """DER signature (SM2, ECDSA) or the RSA signature block over ``message``."""

    @abc.abstractmethod
    def sign_digest(self, digest: bytes, *, scheme: SignatureScheme | None = None) -> bytes:
        """Sign a precomputed digest: SM2 takes e = SM3(Z || M), ECDSA and RSA the hash of
        the message with the key's hash (SHA-256, or SHA-384 for P-384)."""

    @abc.abstractmethod
    def decrypt(self, ciphertext: bytes) -> bytes: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm}>"


def public_key_fingerprint(key: PublicKey | PrivateKey) -> str:
    """Lower-case hex SM3 of the key's SubjectPublicKeyInfo DER, as this service writes it.

    The SPKI is re-encoded first, so the same key always has the same fingerprint
    whatever encoding it arrived in.
    """
    return sm3(key.public_bytes_spki()).hex()


def no_scheme(algorithm: KeyAlgorithm, scheme: SignatureScheme | None) -> None:
    if scheme is not None:
        raise UnsupportedAlgorithm(f"{algorithm} keys take no signature scheme")


def no_signer_id(algorithm: KeyAlgorithm, signer_id: bytes | None) -> None:
    if signer_id is not None:
        raise UnsupportedAlgorithm(f"a signer ID applies to SM2 keys only, not {algorithm}")


def check_digest(digest: bytes, size: int) -> None:
    if len(digest) != size:
        raise InvalidLength(f"digest must be {size} bytes, got {len(digest)}")


_V = TypeVar("_V", bound=core.Asn1Value)


def load_der(spec: type[_V], data: bytes, what: str) -> _V:
    """Parse ``data`` as DER of ``spec``, all the way down, or raise ``MalformedASN1``.

    Non-canonical encodings (BER lengths, trailing bytes) are refused as well, so
    that a key has exactly one accepted encoding.
    """
    try:
        value = spec.load(data, strict=True)
        _ = value.native  # forces parsing of every nested field
        canonical = value.dump(force=True) == data
    # asn1crypto reports bad input with assorted built-in exceptions (ValueError,
    # TypeError, KeyError from its spec callbacks, OverflowError, ...): all mean "not DER".
    except Exception:
        raise MalformedASN1(f"{what} is not valid DER") from None
    if not canonical:
        raise MalformedASN1(f"{what} is not canonical DER")
    return value


_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n([A-Za-z0-9+/=\s]*?)-----END \1-----\s*"
)


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """The (type, DER) blocks of a PEM text (RFC 7468, strict base64), or ``MalformedEncoding``.

    Text between blocks is allowed (OpenSSL writes explanatory text); a block that
    is not well formed, or PEM headers (legacy encrypted keys), are not.
    """
    blocks = []
    found = False
    for match in _PEM_BLOCK.finditer(data):
        found = True
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except ValueError:
            raise MalformedEncoding("PEM body is not valid base64") from None
        blocks.append((match.group(1).decode("ascii"), der))
    if not found or data.count(b"-----BEGIN ") != len(blocks):
        raise MalformedEncoding("PEM does not decode")
    return blocks


def to_pem(kind: str, der: bytes) -> bytes:
    return pem.armor(kind, der)


def is_pem(data: bytes) -> bool:
    return data.lstrip()[:11] == b"-----BEGIN "
