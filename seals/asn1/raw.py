"""Element-level access to DER: the exact bytes of each element, as found in the input.

Signatures cover encodings, not values, so the signed parts of a seal must be taken
from the input byte for byte; asn1crypto would re-encode some of them (indefinite
lengths, explicitly encoded DEFAULT values) when asked to dump.
"""

from __future__ import annotations

from asn1crypto import parser

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_SEQUENCE = 0x30


def identifier(element: bytes) -> int:
    """The first identifier octet (class, constructed bit and low tag number)."""
    return element[0]


def children(element: bytes) -> list[bytes]:
    """The complete encodings of the elements inside a constructed element.

    Raises ValueError (from asn1crypto's parser) when the lengths do not add up.
    """
    _, method, _, _, contents, _ = parser.parse(element, strict=True)
    if method != 1:
        raise ValueError("element is not constructed")
    found = []
    while contents:
        size = parser.peek(contents)
        found.append(contents[:size])
        contents = contents[size:]
    return found


def sequence(parts: list[bytes]) -> bytes:
    """A definite-length SEQUENCE around already encoded elements."""
    return parser.emit(0, 1, 16, b"".join(parts))
