"""Forcing asn1crypto's lazy parser through a whole structure, in bounded time.

asn1crypto parses nested fields on first access, so a structure that loads can still
fail later, anywhere. ``parse_fully`` touches every field once, so parse errors
happen at the boundary where they become ``MalformedASN1``. It does not use
``.native``: that re-encodes a subtree at every level once a DEFAULT field has been
filled in (which asn1crypto counts as a change), which is quadratic in the nesting
depth and took seconds on a SignedData nested in an unsigned attribute.
"""

from __future__ import annotations

from typing import TypeVar

from asn1crypto import core

from trust.errors import MalformedASN1

MAX_DEPTH = 64

_V = TypeVar("_V", bound=core.Asn1Value)


def parse_fully(value: core.Asn1Value, depth: int = 0) -> None:
    """Parse every nested field of ``value``; asn1crypto errors propagate as they are."""
    if depth > MAX_DEPTH:
        raise ValueError("ASN.1 nested too deeply")
    if isinstance(value, core.Choice):
        parse_fully(value.chosen, depth + 1)
    elif isinstance(value, core.Sequence | core.SequenceOf):
        for index in range(len(value)):
            parse_fully(value[index], depth + 1)
    elif isinstance(value, core.ParsableOctetString | core.ParsableOctetBitString):
        # _parsed is set only when the field has a spec (e.g. eContent of a known type);
        # otherwise the octets are opaque content and must not be parsed as ASN.1.
        if value._parsed is not None:
            parse_fully(value._parsed[0], depth + 1)
    else:
        _ = value.native


def load_strict(spec: type[_V], data: bytes, what: str) -> _V:
    """``data`` parsed as ``spec`` (DER or BER), every nested field checked now, or
    ``MalformedASN1``. The returned object is a fresh parse, so its ``dump()`` gives back
    the original bytes of every part (see the module docstring)."""
    try:
        parse_fully(spec.load(data, strict=True))
        return spec.load(data, strict=True)
    # asn1crypto reports bad input with assorted built-in exceptions (ValueError,
    # TypeError, KeyError, OverflowError, RecursionError ...): all mean "does not parse".
    except Exception:
        raise MalformedASN1(f"{what} does not parse") from None
