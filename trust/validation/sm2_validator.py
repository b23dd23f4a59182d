"""SM3withSM2 for pyhanko-certvalidator: a ``SignatureValidator`` that certvalidator calls for
every certificate, CRL and OCSP response signature it checks.

SM2 signatures (1.2.156.10197.1.501, and 1.2.156.10197.1.301.1 which some producers write)
are verified with Z computed over the signer's public key and the default ID
``1234567812345678`` (GM/T 0015, standards.md §4); everything else goes to certvalidator's
own validator. Failures are reported the way certvalidator expects them:
``cryptography.exceptions.InvalidSignature``. Importing this module also gives the
contexts certvalidator makes internally for delegated OCSP responders the SM2 validator
(``_SM2ResponderContext``).
"""

from __future__ import annotations

import functools
from typing import Any

from asn1crypto import algos
from asn1crypto.keys import PublicKeyInfo
from cryptography.exceptions import InvalidSignature as PycaInvalidSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.revinfo import validate_ocsp
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
    SignatureValidator,
)

from trust import oids
from trust.errors import TrustError
from trust.keys import PublicKey, SM2PublicKey, load_public_key
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend

SM2_SIGNATURE_OIDS = frozenset({oids.SM3_WITH_SM2, oids.SM2_SIGN})


def is_sm2_signature_algorithm(algorithm: algos.SignedDigestAlgorithm) -> bool:
    return algorithm["algorithm"].dotted in SM2_SIGNATURE_OIDS


def sm2_key_from_info(info: PublicKeyInfo, backend: SM2Backend | None = None) -> SM2PublicKey:
    """The SM2 key of a SubjectPublicKeyInfo; any ``TrustError`` if it is not one."""
    key = _sm2_key(info.dump(), backend)  # type: ignore[arg-type]  # hashed by identity
    if not isinstance(key, SM2PublicKey):
        raise TrustError(f"{key.algorithm} key cannot verify an SM2 signature")
    return key


@functools.lru_cache(maxsize=256)
def _sm2_key(spki: bytes, backend: SM2Backend | None) -> PublicKey:
    # The same CA keys verify every path: loading one (point checks, an EVP key) costs
    # as much as a verification. Keys are immutable and safe to share between threads.
    return load_public_key(spki, sm2_backend=backend)


class SM2SignatureValidator(SignatureValidator):
    """Verifies SM3withSM2 with Z (default ID); delegates other algorithms to ``fallback``."""

    def __init__(
        self,
        *,
        backend: SM2Backend | None = None,
        fallback: SignatureValidator | None = None,
    ) -> None:
        self._backend = backend
        self._fallback = fallback or DefaultSignatureValidator()

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        if not is_sm2_signature_algorithm(signature_algorithm):
            self._fallback.validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
            return
        if context.prehashed:
            # A pre-hashed SM2 input would have to be e = SM3(Z || M), which certvalidator
            # cannot compute; nothing in certificate or revocation checking does this.
            raise AlgorithmNotSupported("SM2 signatures over a pre-hashed payload")
        try:
            key = sm2_key_from_info(public_key_info, self._backend)
            key.verify(signature, signed_data, signer_id=DEFAULT_SIGNER_ID)
        except TrustError as exc:
            # Wrong key type, bad point, malformed DER or a signature that does not verify:
            # certvalidator treats them all as "the signature could not be verified".
            raise PycaInvalidSignature(exc.detail) from None


class _SM2ResponderContext(ValidationContext):
    """To check a delegated OCSP responder's certificate certvalidator builds a
    ValidationContext of its own (``revinfo/validate_ocsp.py``) and passes it no signature
    validator, so pyca's default one, which has no SM2: an SM2 CA's responder certificate
    then fails with pyca's UnsupportedAlgorithm, and the whole path with it, instead of
    being checked. Contexts made there get the SM2 validator (other algorithms still go to
    the default one)."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("signature_validator") is None:
            kwargs["signature_validator"] = SM2SignatureValidator()
        super().__init__(**kwargs)


validate_ocsp.ValidationContext = _SM2ResponderContext  # type: ignore[misc,assignment]
