"""Trusted timestamp authority, RFC 3161 / GM/T 0033.

``TimestampAuthority`` answers TimeStampReq with TimeStampResp (or issues a token over
a digest), records every token in a ``TokenLog`` before returning it, and refuses
with timeNotAvailable while its ``ClockHealth`` says the clock is unsynchronised.
``verify_token`` checks a token. Unit configuration and the GM/T 0033 CMS profile
are in ``units``; units kept in the store, their creation and rotation, in
``registry``.
"""

from __future__ import annotations

from timestamp.protocol import TimestampRequest, parse_request
from timestamp.service import IssuedToken, TimestampAuthority, random_serial, serial_hex
from timestamp.store import SqlTokenLog, TokenLog, TokenRecord
from timestamp.units import (
    GMT0033,
    ClockHealth,
    FixedUnits,
    FlagFileClockHealth,
    ManualClockHealth,
    TsaUnit,
    UnitSource,
)
from timestamp.verify import ParsedResponse, TokenVerification, parse_response, verify_token

__all__ = [
    "GMT0033",
    "ClockHealth",
    "FixedUnits",
    "FlagFileClockHealth",
    "IssuedToken",
    "ManualClockHealth",
    "ParsedResponse",
    "SqlTokenLog",
    "TimestampAuthority",
    "TimestampRequest",
    "TokenLog",
    "TokenRecord",
    "TokenVerification",
    "TsaUnit",
    "UnitSource",
    "parse_request",
    "parse_response",
    "random_serial",
    "serial_hex",
    "verify_token",
]
