"""Which generation a seal or signature is, from its structure (standards.md §1).

Rule: count the elements of the outer SEQUENCE first. Two elements is v1 (for a seal
the second is SES_SignInfo, a SEQUENCE; for a signature it is the signature BIT
STRING). Four or five elements is v4 or v5, told apart by SES_Header.version (for a
signature, the header of the embedded seal). Anything else is unknown. File
extensions and the TBS_Sign version are not consulted.
"""

from __future__ import annotations

from enum import IntEnum

from asn1crypto import core

from seals.asn1 import raw
from trust.errors import MalformedASN1, UnsupportedSealVersion


class SealVersion(IntEnum):
    V1 = 1  # GM/T 0031-2014
    V4 = 4  # GB/T 38540-2020
    V5 = 5  # GM/T 0031-2025


_HEADER_VERSIONS = {4: SealVersion.V4, 5: SealVersion.V5}


def detect_seal_version(data: bytes) -> SealVersion:
    """The generation of an ``SESeal``; MalformedASN1 or UnsupportedSealVersion otherwise."""
    elements = _outer_elements(data, "SESeal")
    if len(elements) == 2:
        if raw.identifier(elements[1]) != raw.TAG_SEQUENCE:
            raise MalformedASN1("SESeal has 2 elements but the second is not SES_SignInfo")
        return SealVersion.V1
    if len(elements) in (4, 5):
        return _by_header(_nested(elements[0], 0, "SES_SealInfo"), "SESeal")
    raise UnsupportedSealVersion(_count_message("SESeal", len(elements)))


def detect_signature_version(data: bytes) -> SealVersion:
    """The generation of an ``SES_Signature``; MalformedASN1 or UnsupportedSealVersion."""
    elements = _outer_elements(data, "SES_Signature")
    if len(elements) == 2:
        if raw.identifier(elements[1]) != raw.TAG_BIT_STRING:
            raise MalformedASN1("SES_Signature has 2 elements but the second is not a BIT STRING")
        return SealVersion.V1
    if len(elements) in (4, 5):
        seal = _nested(elements[0], 1, "TBS_Sign")
        info = _nested(seal, 0, "embedded SESeal")
        return _by_header(_nested(info, 0, "SES_SealInfo"), "SES_Signature")
    raise UnsupportedSealVersion(_count_message("SES_Signature", len(elements)))


def _outer_elements(data: bytes, what: str) -> list[bytes]:
    try:
        if not data or raw.identifier(data) != raw.TAG_SEQUENCE:
            raise ValueError
        return raw.children(data)
    # asn1crypto's parser reports truncation and bad lengths with ValueError, and
    # can hit others on hostile input; all mean the same to the caller.
    except Exception:
        raise MalformedASN1(f"{what} is not a DER SEQUENCE") from None


def _nested(element: bytes, index: int, what: str) -> bytes:
    """Element ``index`` inside a SEQUENCE, or MalformedASN1 naming ``what``."""
    try:
        if raw.identifier(element) != raw.TAG_SEQUENCE:
            raise ValueError
        return raw.children(element)[index]
    except Exception:
        raise MalformedASN1(f"{what} is not a SEQUENCE with the expected elements") from None


def _by_header(header: bytes, what: str) -> SealVersion:
    try:
        version = core.Integer.load(_nested(header, 1, "SES_Header"), strict=True).native
    except MalformedASN1:
        raise
    except Exception:
        raise MalformedASN1("SES_Header.version is not an INTEGER") from None
    if version not in _HEADER_VERSIONS:
        raise UnsupportedSealVersion(
            f"{what} has the v4/v5 layout but header version {version}; known: 4, 5"
        )
    return _HEADER_VERSIONS[version]


def _count_message(what: str, count: int) -> str:
    return f"{what} has {count} elements; known layouts have 2 (v1), 4 or 5 (v4, v5)"
