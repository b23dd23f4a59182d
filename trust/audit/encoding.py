"""The canonical encodings the audit chain hashes and the checkpoints sign.

Canonical JSON here means: ``json.dumps`` with keys sorted by code point, no
whitespace (``,`` and ``:`` separators), non-ASCII kept as UTF-8 rather than
escaped, then UTF-8 bytes. Values are limited to objects with string keys,
arrays, strings, integers, booleans and null. Floats are refused, so the
encoding never depends on how a language prints a float. Times are RFC 3339
in UTC with exactly six fractional digits and a ``Z`` suffix.

A record encodes as the canonical JSON of::

    {"action", "actor", "details", "outcome", "request_id", "seq", "target",
     "time", "type": "audit_record", "v": 1}

and chains as ``hash_n = SM3(hash_{n-1} || encoding_n)``, with 32 zero bytes
before record 1. A checkpoint signs the canonical JSON of ``{"algorithm",
"hash" (hex), "key_id", "seq", "time", "type": "audit_checkpoint", "v": 1}``.
The ``type`` member keeps the two kinds of message apart.

Details must never carry secrets, so :func:`check_details` refuses them
rather than silently stripping: a refusal is deterministic per call site and
surfaces in that call site's tests, where a stripped value would hide the bug.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trust.errors import AuditRecordRefused
from trust.sm3 import sm3

VERSION = 1
GENESIS_HASH = bytes(32)
MAX_DETAILS_BYTES = 16 * 1024

# Words that mark a value as secret when they appear in a details key.
SECRET_WORDS = frozenset(
    {"private", "secret", "password", "passwd", "passphrase", "token", "pin", "credential"}
)
# An identifier of a secret ("token_id", "private_key_id") names it without revealing it.
_IDENTIFIER_WORDS = frozenset({"id", "ids"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (already checked to hold only JSON types)."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise AuditRecordRefused("text that is not valid Unicode") from exc


def format_time(when: datetime) -> str:
    """RFC 3339, UTC, microseconds: ``2026-01-01T00:00:00.000000Z`` (aware datetimes only)."""
    if when.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    # isoformat is several times faster than strftime and gives the same digits (years >= 1000).
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _key_words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


# Callers use a handful of fixed detail keys; the answer depends on the key alone.
@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    words = _key_words(key)
    if not words or words[-1] in _IDENTIFIER_WORDS:
        return False
    if any(w in SECRET_WORDS or w.removesuffix("s") in SECRET_WORDS for w in words):
        return True
    return any(a == "key" and b == "material" for a, b in zip(words, words[1:], strict=False))


def _check_value(value: Any, path: str) -> None:
    # Leaves first: they are most values, and the Mapping check below is a slow ABC check.
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        # PEM armour of any private key, whatever the key it sits under.
        if "PRIVATE KEY" in value:
            raise AuditRecordRefused(f"audit details must not hold key material: {path}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditRecordRefused(f"audit details key at {path} is not a string")
            if _is_secret_key(key):
                raise AuditRecordRefused(
                    f"audit details must not hold secrets: key {path}.{key} is refused"
                )
            _check_value(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]")
    elif isinstance(value, bytes | bytearray | memoryview):
        raise AuditRecordRefused(
            f"audit details must not hold raw bytes ({path}): a digest worth logging is "
            "passed as hex under a name that says what it is"
        )
    elif isinstance(value, float):
        raise AuditRecordRefused(f"audit details must not hold floats ({path})")
    else:
        raise AuditRecordRefused(
            f"audit details value at {path} is a {type(value).__name__}, not a JSON type"
        )


def check_details(details: Mapping[str, Any] | None) -> bytes:
    """The canonical JSON of ``details``, or AuditRecordRefused when they could hold a secret.

    Refused: keys with a word from SECRET_WORDS (plurals too) or ``key_material``
    unless the key ends in ``id``/``ids``; raw bytes of any length (an SM2 private
    scalar is as long as a digest, so length tells nothing); strings holding PEM
    ``PRIVATE KEY`` armour; floats and non-JSON types; more than MAX_DETAILS_BYTES.
    """
    value = dict(details or {})
    _check_value(value, "details")
    encoded = canonical_json(value)
    if len(encoded) > MAX_DETAILS_BYTES:
        raise AuditRecordRefused(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    return encoded


def record_encoding(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    request_id: str | None,
    details: Mapping[str, Any],
) -> bytes:
    """The canonical encoding of one record."""
    return record_encoding_json(
        seq=seq,
        time=time,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        request_id=request_id,
        details_json=canonical_json(details).decode("utf-8"),
    )


# One string member: json.dumps's own escaping, so the splice below matches it exactly.
_string = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def record_encoding_json(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    request_id: str | None,
    details_json: str,
) -> bytes:
    """``record_encoding`` from details already in canonical JSON (as stored): the members
    spliced in sorted key order, so the details are neither parsed nor encoded again."""
    text = (
        f'{{"action":{_string(action)},"actor":{_string(actor)},"details":{details_json},'
        f'"outcome":{_string(outcome)},"request_id":{_string(request_id)},"seq":{int(seq)},'
        f'"target":{_string(target)},"time":{_string(time)},"type":"audit_record","v":{VERSION}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise AuditRecordRefused("text that is not valid Unicode") from exc


def chain_hash(prev_hash: bytes, encoding: bytes) -> bytes:
    """hash_n = SM3(hash_{n-1} || encoding_n)."""
    return sm3(prev_hash + encoding)


def checkpoint_encoding(
    *, seq: int, chain_hash: bytes, time: str, key_id: str, algorithm: str
) -> bytes:
    """The bytes a checkpoint signature covers."""
    return canonical_json(
        {
            "algorithm": algorithm,
            "hash": chain_hash.hex(),
            "key_id": key_id,
            "seq": seq,
            "time": time,
            "type": "audit_checkpoint",
            "v": VERSION,
        }
    )
