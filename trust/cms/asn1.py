"""Forcing asn1crypto's lazy parser through a whole structure, in bounded time.

asn1crypto parses nested fields on first access, so a structure that loads can still
fail later, anywhere. ``parse_fully`` touches every field once, so parse errors
happen at the boundary where they become ``MalformedASN1``. It does not use
``.native``: that re-encodes a subtree at every level once a DEFAULT field has been
filled in (which asn1crypto counts as a change), which is quadratic in the nesting
depth and took seconds on a SignedData nested in an unsigned attribute.

Repeated parts are checked once per encoding: the same signer and CA certificates, and
the same names, algorithm identifiers and ESS signingCertificate values, arrive in CMS
after CMS, and walking them again cost more than verifying the signature. An embedded
certificate is checked through ``shared_certificate``, which parses each DER once and
keeps the parsed object (read-only afterwards, so shared by threads and callers); a
name, an algorithm identifier or an ESS value whose (type, encoding) was walked before
is not walked again (``_KNOWN``, bounded): the same bytes under the same spec parse the
same way when the field is read later.
"""

from __future__ import annotations

import functools
from typing import TypeVar

from asn1crypto import algos, core, tsp, x509

from trust.errors import MalformedASN1

MAX_DEPTH = 64

_V = TypeVar("_V", bound=core.Asn1Value)


def parse_fully(value: core.Asn1Value, depth: int = 0) -> None:
    """Parse every nested field of ``value``; asn1crypto errors propagate as they are."""
    if depth > MAX_DEPTH:
        raise ValueError("ASN.1 nested too deeply")
    if depth and isinstance(value, x509.Certificate):
        shared_certificate(value.dump())  # an untouched lazy value dumps its original bytes
    elif depth and isinstance(value, _REPEATED):
        key = (type(value), value.dump())
        if key not in _KNOWN:
            _walk(value, depth)
            _remember(key)
    else:
        _walk(value, depth)


def _walk(value: core.Asn1Value, depth: int) -> None:
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


# Types whose values recur from one CMS to the next (module docstring).
_REPEATED = (
    x509.Name,
    algos.DigestAlgorithm,
    algos.SignedDigestAlgorithm,
    tsp.SigningCertificate,
    tsp.SigningCertificateV2,
)
_KNOWN: dict[tuple[type, bytes], None] = {}
_KNOWN_LIMIT = 4096


def _remember(key: tuple[type, bytes]) -> None:
    if len(_KNOWN) >= _KNOWN_LIMIT:  # only bounds memory: values recur, so it refills
        _KNOWN.clear()
    _KNOWN[key] = None


def load_strict(spec: type[_V], data: bytes, what: str) -> _V:
    """``data`` parsed as ``spec`` (DER or BER), every nested field checked now, or
    ``MalformedASN1``. ``parse_fully`` only reads (asn1crypto marks a value changed on
    assignment alone), so every part of the object returned still dumps the bytes it was
    parsed from (a DER part its original encoding): no second parse is needed."""
    try:
        value = spec.load(data, strict=True)
        parse_fully(value)
        return value
    # asn1crypto reports bad input with assorted built-in exceptions (ValueError,
    # TypeError, KeyError, OverflowError, RecursionError ...): all mean "does not parse".
    except Exception:
        raise MalformedASN1(f"{what} does not parse") from None


@functools.lru_cache(maxsize=1024)
def shared_certificate(der: bytes) -> x509.Certificate:
    """``der`` as a fully checked certificate, parsed once per DER (module docstring);
    ``MalformedASN1`` if it does not parse."""
    cert = load_strict(x509.Certificate, der, "certificate")
    _remember_encoding(cert, der)
    return cert


# Encodings of parsed values by object (the object is kept, so its id stays its own).
_ENCODINGS: dict[int, tuple[core.Asn1Value, bytes]] = {}


def encoding(value: core.Asn1Value) -> bytes:
    """``value.dump()`` for a value never modified after parsing (certificates here),
    remembered per object: asn1crypto's ``dump`` first walks the whole parsed tree for
    changes, which for a parsed certificate costs as much as hashing it many times."""
    hit = _ENCODINGS.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    der = value.dump()
    _remember_encoding(value, der)
    return der


def _remember_encoding(value: core.Asn1Value, der: bytes) -> None:
    if len(_ENCODINGS) >= _KNOWN_LIMIT:
        _ENCODINGS.clear()
    _ENCODINGS[id(value)] = (value, der)
