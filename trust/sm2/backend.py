"""The small interface every SM2 engine implements.

Backends work on raw forms only: a private key is the 32-byte big-endian
scalar d, a public key the 65-byte uncompressed point 04||X||Y, a signature
DER ``SEQUENCE {r, s}``, a ciphertext the GM/T 0009 DER ``SM2Cipher``.
Handles exist so that an engine can keep its own parsed key object (an
``EVP_PKEY`` for OpenSSL) between calls instead of rebuilding it, which would
cost a scalar multiplication per signature.

Errors: malformed input raises ``trust.errors.InvalidKey`` /
``InvalidSignatureEncoding`` / ``MalformedASN1``; a well-formed signature that
does not verify raises ``InvalidSignature``; a ciphertext that does not
decrypt raises ``DecryptionFailed``; an engine fault raises ``BackendError``.
Never another exception type.

Limits shared by every engine: a signer ID of at most 8190 bytes (OpenSSL's
bound; ``trust.sm2.curve.MAX_SIGNER_ID_BYTES``), a pre-computed e of exactly
32 bytes and a non-empty plaintext, else ``InvalidLength``. Signature DER is
parsed strictly (minimal encoding, no trailing bytes, r and s in [1, n-1]).
"""

from __future__ import annotations

from typing import Protocol

DEFAULT_SIGNER_ID = b"1234567812345678"


class SM2PublicHandle(Protocol):
    def public_bytes(self) -> bytes:
        """65-byte uncompressed point."""

    def verify(
        self, message: bytes, signature: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> None:
        """Verify a DER signature over SM3(Z(signer_id, P) || message)."""

    def verify_digest(self, e: bytes, signature: bytes) -> None:
        """Verify a DER signature over a caller-computed 32-byte e = SM3(Z || M)."""

    def encrypt(self, plaintext: bytes) -> bytes:
        """GM/T 0003.4 encryption; returns GM/T 0009 SM2Cipher DER (C1C3C2 order)."""


class SM2PrivateHandle(Protocol):
    def public_bytes(self) -> bytes: ...

    def public_handle(self) -> SM2PublicHandle: ...

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """DER signature over SM3(Z(signer_id, P) || message)."""

    def sign_digest(self, e: bytes) -> bytes:
        """DER signature over a caller-computed 32-byte e."""

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt a GM/T 0009 SM2Cipher DER."""


class SM2Backend(Protocol):
    name: str

    def generate(self) -> SM2PrivateHandle: ...

    def load_private(self, scalar: bytes) -> SM2PrivateHandle:
        """From the 32-byte scalar; 0 < d < n-1 or InvalidKey."""

    def load_public(self, point: bytes) -> SM2PublicHandle:
        """From the 65-byte uncompressed point; on the curve or InvalidKey."""

    def private_scalar(self, handle: SM2PrivateHandle) -> bytes:
        """The 32-byte scalar of a handle, for PKCS#8 export inside the keystore only."""
