"""Structures every seal generation shares (the v4 and v5 classes reuse the v1 ones in ofdrw).

Decoding tolerance lives in small CHOICE types here, so that each generation's
module reads like the standard's ASN.1 with a few alternatives marked.
"""

from __future__ import annotations

from typing import TypeVar

from asn1crypto import core


class SESHeader(core.Sequence):
    _fields = [
        ("id", core.IA5String),  # always "ES"
        ("version", core.Integer),
        ("vid", core.IA5String),  # vendor id
    ]


class ExtData(core.Sequence):
    _fields = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class SESESPictrueInfo(core.Sequence):
    """The seal image ("Pictrue" is the standard's spelling)."""

    _fields = [
        ("type", core.IA5String),  # PNG, GIF, BMP, JPG, SVG, OFD ...
        ("data", core.OctetString),
        ("width", core.Integer),  # millimetres
        ("height", core.Integer),
    ]


class CertInfoList(core.SequenceOf):
    """Signer certificates, each the DER of an X.509 certificate in an OCTET STRING."""

    _child_spec = core.OctetString


class CertDigestObj(core.Sequence):
    _fields = [
        ("type", core.PrintableString),  # hash algorithm name, e.g. "SM3"
        ("value", core.OctetString),
    ]


class CertDigestList(core.SequenceOf):
    _child_spec = CertDigestObj


class AlgorithmIdentifier(core.Sequence):
    _fields = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class SignAlgorithm(core.Choice):
    """The standard writes a bare OID; an AlgorithmIdentifier (with NULL or absent
    parameters, as in X.509) is accepted when reading."""

    _alternatives = [
        ("oid", core.ObjectIdentifier),
        ("algorithm_identifier", AlgorithmIdentifier),
    ]


_V = TypeVar("_V", bound=core.Asn1Value)


def parse_all(value: _V) -> _V:
    """Parse every field now (asn1crypto parses lazily) and refuse elements the spec does
    not have: asn1crypto silently keeps unexpected trailing elements of a SEQUENCE.

    ``Any`` fields are left alone: they are opaque on purpose and read with their own
    spec later. Raises ValueError (or whatever asn1crypto raises) on bad input.
    """
    if isinstance(value, core.Any):
        return value
    if isinstance(value, core.Choice):
        parse_all(value.chosen)
    elif isinstance(value, core.Sequence):
        if len(value) != len(value._fields):
            raise ValueError(f"{type(value).__name__} has elements its definition lacks")
        for index in range(len(value)):
            parse_all(value[index])
    elif isinstance(value, core.SequenceOf):
        for child in value:
            parse_all(child)
    else:
        _ = value.native
    return value
