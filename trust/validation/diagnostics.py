"""SM2 diagnostics: after a signature or ciphertext has failed, what would have worked.

The usual interoperability mistakes are a missing Z (e = SM3(M), as Tongsuo's ``sm2-noza``
certificates and some cloud KMS do), a different signer ID, raw r||s where DER is expected
(or the reverse), the wrong certificate, and for ciphertexts the C1C2C3 / C1C3C2 order.
Each variant that verifies (or decrypts) is reported as a ``Finding`` with a stable code.
A hint never turns a failure into a pass: the caller's verdict stays as it was.

Variants are tried fewest deviations first and only the first that works is reported, so
the hints name one consistent explanation (e.g. raw r||s *and* an empty ID).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TypeVar

from trust.errors import TrustError
from trust.keys import SM2PrivateKey, SM2PublicKey
from trust.sm2.backend import DEFAULT_SIGNER_ID
from trust.sm2.curve import compute_e
from trust.sm2.encoding import CipherOrder, der_to_raw, raw_to_cipher_der, raw_to_der
from trust.sm3 import sm3
from trust.validation.report import Finding


class HintCode(StrEnum):
    VERIFIES_WITHOUT_Z = "sm2.verifies_without_z"
    VERIFIES_WITH_EMPTY_SIGNER_ID = "sm2.verifies_with_empty_signer_id"
    VERIFIES_WITH_DEFAULT_SIGNER_ID = "sm2.verifies_with_default_signer_id"
    VERIFIES_WITH_OTHER_SIGNER_ID = "sm2.verifies_with_other_signer_id"
    SIGNATURE_IS_RAW = "sm2.signature_is_raw_r_s"
    SIGNATURE_IS_DER = "sm2.signature_is_der"
    VERIFIES_WITH_OTHER_CERTIFICATE = "sm2.verifies_with_other_certificate"
    CIPHERTEXT_IS_DER = "sm2.ciphertext_is_der"
    CIPHERTEXT_IS_C1C3C2 = "sm2.ciphertext_is_c1c3c2"
    CIPHERTEXT_IS_C1C2C3 = "sm2.ciphertext_is_c1c2c3"
    CIPHERTEXT_C1_WITHOUT_04 = "sm2.ciphertext_c1_without_04"


class SignatureEncoding(StrEnum):
    DER = "der"  # GM/T 0009 SM2Signature SEQUENCE {r, s}
    RAW = "raw"  # 64 bytes r||s, as SDF/SKF devices return it


class CiphertextForm(StrEnum):
    DER = "der"  # GM/T 0009 SM2Cipher
    C1C3C2 = "c1c3c2"
    C1C2C3 = "c1c2c3"


# Signer IDs seen in the field besides the caller's: the GM/T 0009 default, none, the
# GB/T 32918 worked-example IDs, and the default written as hex text by mistake.
FIELD_SIGNER_IDS: tuple[bytes, ...] = (
    DEFAULT_SIGNER_ID,
    b"",
    b"ALICE123@YAHOO.COM",
    b"BILL456@YAHOO.COM",
    DEFAULT_SIGNER_ID.hex().encode("ascii"),
)

_Variant = tuple[bytes, Finding | None]
_T = TypeVar("_T")


def diagnose_sm2_signature(
    public_key: SM2PublicKey,
    signature: bytes,
    *,
    message: bytes | None = None,
    digest: bytes | None = None,
    signer_id: bytes = DEFAULT_SIGNER_ID,
    encoding: SignatureEncoding = SignatureEncoding.DER,
    other_keys: Sequence[tuple[str, SM2PublicKey]] = (),
) -> tuple[Finding, ...]:
    """Hints for an SM2 signature that failed over ``message`` (or the precomputed
    e = ``digest``, where only the encoding and the key can be varied)."""
    if (message is None) == (digest is None):
        raise ValueError("give exactly one of message and digest")
    signatures = _signature_variants(signature, encoding)
    keys: list[tuple[SM2PublicKey, Finding | None]] = [(public_key, None)]
    keys += [
        (
            key,
            Finding(
                code=HintCode.VERIFIES_WITH_OTHER_CERTIFICATE,
                message=f"the signature verifies with the public key of {label}",
                details={"certificate": label},
            ),
        )
        for label, key in other_keys
    ]
    combos = [
        (sig, key, e_variant)
        for sig, key in itertools.product(signatures, keys)
        for e_variant in _e_variants(key[0], message, digest, signer_id)
    ]
    combos.sort(key=lambda c: sum(h is not None for h in (c[0][1], c[1][1], c[2][1])))
    for (der, sig_hint), (key, key_hint), (e, e_hint) in combos:
        hints = [h for h in (sig_hint, key_hint, e_hint) if h is not None]
        if hints and _verifies(key, der, e):
            return tuple(hints)
    return ()


def _signature_variants(signature: bytes, encoding: SignatureEncoding) -> list[_Variant]:
    """The DER forms to try: as given, and converted from the other encoding."""
    variants: list[_Variant] = []
    as_der = signature if _try(lambda: der_to_raw(signature)) is not None else None
    as_raw = _try(lambda: raw_to_der(signature))
    if encoding is SignatureEncoding.DER:
        if as_der is not None:
            variants.append((as_der, None))
        if as_raw is not None:
            variants.append(
                (
                    as_raw,
                    Finding(
                        code=HintCode.SIGNATURE_IS_RAW,
                        message="the signature is 64-byte raw r||s, not DER SEQUENCE {r, s}; "
                        "it verifies once converted (declare the raw encoding)",
                    ),
                )
            )
    else:
        if as_raw is not None:
            variants.append((as_raw, None))
        if as_der is not None:
            variants.append(
                (
                    as_der,
                    Finding(
                        code=HintCode.SIGNATURE_IS_DER,
                        message="the signature is DER SEQUENCE {r, s}, not raw r||s; "
                        "it verifies as DER (declare the DER encoding)",
                    ),
                )
            )
    return variants


def _e_variants(
    key: SM2PublicKey, message: bytes | None, digest: bytes | None, signer_id: bytes
) -> list[_Variant]:
    if message is None:
        assert digest is not None
        return [(digest, None)]
    point = key.point()
    variants: list[_Variant] = []
    field_ids = [(i, _signer_id_hint(i)) for i in FIELD_SIGNER_IDS if i != signer_id]
    for candidate, hint in [(signer_id, None), *field_ids]:
        try:
            e = compute_e(point, message, candidate)
        except TrustError:  # an over-long caller ID
            continue
        variants.append((e, hint))
    variants.append(
        (
            sm3(message),
            Finding(
                code=HintCode.VERIFIES_WITHOUT_Z,
                message="the signature verifies over e = SM3(M) without Z: the signer left out "
                "the GM/T 0003 Z value; a conformant verifier rejects such signatures",
            ),
        )
    )
    return variants


def _signer_id_hint(signer_id: bytes) -> Finding:
    if signer_id == b"":
        return Finding(
            code=HintCode.VERIFIES_WITH_EMPTY_SIGNER_ID,
            message="the signature verifies with an empty signer ID",
            details={"signer_id_hex": ""},
        )
    if signer_id == DEFAULT_SIGNER_ID:
        return Finding(
            code=HintCode.VERIFIES_WITH_DEFAULT_SIGNER_ID,
            message="the signature verifies with the default signer ID 1234567812345678, "
            "not the one given",
            details={"signer_id_hex": signer_id.hex()},
        )
    return Finding(
        code=HintCode.VERIFIES_WITH_OTHER_SIGNER_ID,
        message=f"the signature verifies with the signer ID {signer_id.decode('latin-1')!r}",
        details={"signer_id_hex": signer_id.hex()},
    )


def _verifies(key: SM2PublicKey, der: bytes, e: bytes) -> bool:
    try:
        key.verify_digest(der, e)
    except TrustError:
        return False
    return True


def _try(make: Callable[[], _T]) -> _T | None:
    try:
        return make()
    except TrustError:
        return None


def diagnose_sm2_ciphertext(
    private_key: SM2PrivateKey,
    ciphertext: bytes,
    *,
    expected: CiphertextForm = CiphertextForm.DER,
) -> tuple[Finding, ...]:
    """Hints for an SM2 ciphertext that did not decrypt in the ``expected`` form: which
    other form (DER, C1C3C2, C1C2C3, C1 with or without the 04 prefix) does. The plaintext
    is never returned."""
    for form, prefixed in _cipher_forms(expected):
        der = ciphertext if form is CiphertextForm.DER else _raw_form(ciphertext, form, prefixed)
        if der is None or not _decrypts(private_key, der):
            continue
        hints = []
        if form is not expected:
            hints.append(
                Finding(
                    code=_FORM_CODES[form],
                    message=f"the ciphertext decrypts as {_FORM_NAMES[form]}, "
                    f"not as {_FORM_NAMES[expected]}",
                )
            )
        if not prefixed:
            hints.append(
                Finding(
                    code=HintCode.CIPHERTEXT_C1_WITHOUT_04,
                    message="C1 is written as x||y without the 04 point prefix",
                )
            )
        return tuple(hints)
    return ()


_FORM_CODES = {
    CiphertextForm.DER: HintCode.CIPHERTEXT_IS_DER,
    CiphertextForm.C1C3C2: HintCode.CIPHERTEXT_IS_C1C3C2,
    CiphertextForm.C1C2C3: HintCode.CIPHERTEXT_IS_C1C2C3,
}
_FORM_NAMES = {
    CiphertextForm.DER: "GM/T 0009 SM2Cipher DER",
    CiphertextForm.C1C3C2: "raw C1C3C2 (GB/T 32918.4-2016)",
    CiphertextForm.C1C2C3: "raw C1C2C3 (2010 draft order, older CFCA SADK)",
}


def _cipher_forms(expected: CiphertextForm) -> list[tuple[CiphertextForm, bool]]:
    """Every form other than the exact expected one, the likeliest confusions first."""
    forms = [(CiphertextForm.DER, True)] + [
        (form, prefixed)
        for prefixed in (True, False)
        for form in (CiphertextForm.C1C3C2, CiphertextForm.C1C2C3)
    ]
    return [f for f in forms if f != (expected, True)]


def _raw_form(ciphertext: bytes, form: CiphertextForm, prefixed: bool) -> bytes | None:
    order = CipherOrder.C1C3C2 if form is CiphertextForm.C1C3C2 else CipherOrder.C1C2C3
    return _try(lambda: raw_to_cipher_der(ciphertext, order, prefixed))


def _decrypts(private_key: SM2PrivateKey, der: bytes) -> bool:
    try:
        private_key.decrypt(der)
    except TrustError:
        return False
    return True
