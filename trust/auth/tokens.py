"""The API token format.

``trst_<id>_<secret>``: ``id`` is 12 hex digits (48 random bits), public, shown
in listings and logs and used to find the record; ``secret`` is 32 random bytes
(256 bits) in unpadded base64url. The database keeps only SM3 of the whole token:
with 256 bits of entropy a plain hash cannot be brute-forced, so no salt or slow
KDF is needed, and the lookup stays one indexed read plus a constant-time compare.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from trust.sm3 import sm3

PREFIX = "trst"
ID_HEX_CHARS = 12
SECRET_BYTES = 32

_FORMAT = re.compile(r"^trst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    token: str


def new_token_id() -> str:
    return secrets.token_hex(ID_HEX_CHARS // 2)


def new_token(token_id: str) -> str:
    return f"{PREFIX}_{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse(token: str) -> ParsedToken | None:
    """The token's public id, or None when the string is not a token at all."""
    m = _FORMAT.match(token)
    return ParsedToken(m.group(1), token) if m else None


def token_hash(token: str) -> bytes:
    return sm3(token.encode("ascii"))


def hash_matches(token: str, stored: bytes) -> bool:
    return hmac.compare_digest(token_hash(token), stored)
