"""The time-stamp authority: RFC 3161 / GM/T 0033 requests in, signed tokens out.

Serial numbers are 127 random bits from the CSPRNG, made unique by the token log's
primary key: no coordination between workers, hosts or restarts is needed, a
collision (about 2^-63 after 2^32 tokens) is refused by the database and retried
with a new serial, and serials reveal nothing about issuance volume. Each token is
recorded after signing and before it is returned, so no token leaves the TSA
unrecorded; a token whose record fails is discarded.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from timestamp import protocol
from timestamp.protocol import TimestampRequest
from timestamp.store import TokenLog, TokenRecord
from timestamp.units import ClockHealth, FixedUnits, ManualClockHealth, TsaUnit, UnitSource
from trust.clock import Clock
from trust.errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    TrustError,
)

log = logging.getLogger(__name__)

SERIAL_BITS = 127
_SERIAL_ATTEMPTS = 3
_MAX_SERIAL_HEX = 40  # 160 bits, the largest serial RFC 3161 asks clients to handle


def random_serial() -> int:
    return 1 + secrets.randbelow((1 << SERIAL_BITS) - 1)


def serial_hex(serial: int) -> str:
    return format(serial, "x")


@dataclass(frozen=True)
class IssuedToken:
    serial_hex: str
    gen_time: datetime
    unit: str
    policy: str
    token: bytes  # DER ContentInfo (TimeStampToken)


class TimestampAuthority:
    def __init__(
        self,
        units: Sequence[TsaUnit] | UnitSource,
        log: TokenLog,
        clock: Clock,
        clock_health: ClockHealth | None = None,
        *,
        default_unit: str | None = None,
        serials: Callable[[], int] = random_serial,
    ) -> None:
        if isinstance(units, Sequence):
            units = FixedUnits(units)
            default_unit = default_unit or units.first
            if default_unit not in units.current():
                raise ConfigurationError(f"default TSA unit {default_unit} is not configured")
        self._source = units
        self._default = default_unit
        self._log = log
        self._clock = clock
        self._health = clock_health or ManualClockHealth()
        self._serials = serials

    @property
    def units(self) -> tuple[TsaUnit, ...]:
        return tuple(self._source.current().values())

    def reload_units(self) -> None:
        self._source.refresh()

    def clock_synchronised(self) -> bool:
        return self._health.synchronised()

    def unit(self, name: str | None = None) -> TsaUnit:
        name = name or self._default
        unit = self._source.current().get(name) if name else None
        if unit is None:
            raise NotFound(f"no TSA unit {name}" if name else "no default TSA unit configured")
        return unit

    def respond(self, request: bytes, unit: str | None = None) -> bytes:
        """DER TimeStampResp for a DER TimeStampReq: a token, or a rejection whose failInfo
        says why. Only an unknown ``unit`` raises (``NotFound``), since no unit can answer."""
        target = self.unit(unit)
        try:
            issued = self._issue(target, protocol.parse_request(request))
        except TrustError as exc:
            failure = exc.extra.get("failure_info")
            if failure is None:
                log.exception("time-stamp unit %s failed", target.name)
                return protocol.rejection(protocol.SYSTEM_FAILURE, "internal failure")
            return protocol.rejection(failure, exc.detail)
        return protocol.granted(issued.token)

    def issue(
        self,
        hash_algorithm: str,
        digest: bytes,
        *,
        unit: str | None = None,
        nonce: int | None = None,
        cert_req: bool = True,
        policy: str | None = None,
    ) -> IssuedToken:
        """A token over a digest the caller computed; refusals raise, with ``failure_info``."""
        protocol.check_imprint(hash_algorithm, digest)
        request = TimestampRequest(
            hash_algorithm=hash_algorithm,
            digest=digest,
            policy=policy,
            nonce=nonce,
            cert_req=cert_req,
            message_imprint=protocol.message_imprint(hash_algorithm, digest),
        )
        return self._issue(self.unit(unit), request)

    def get(self, serial: str) -> TokenRecord:
        """The record of an issued token by its hex serial (any case, leading zeros allowed)."""
        try:
            if len(serial) > _MAX_SERIAL_HEX:
                raise ValueError
            canonical = serial_hex(int(serial, 16))
        except ValueError:
            raise BadRequest("a serial number is at most 40 hexadecimal digits") from None
        record = self._log.get(canonical)
        if record is None:
            raise NotFound(f"no time-stamp token with serial {canonical}")
        return record

    def _issue(self, unit: TsaUnit, request: TimestampRequest) -> IssuedToken:
        policy = request.policy or unit.policy
        if policy not in unit.policies:
            raise BadRequest(
                f"policy {policy} is not offered by unit {unit.name}",
                failure_info=protocol.UNACCEPTED_POLICY,
            )
        if not self._health.synchronised():
            raise ServiceUnavailable(
                "the TSA clock is not synchronised", failure_info=protocol.TIME_NOT_AVAILABLE
            )
        gen_time = self._clock.now()
        template = unit.template(request.cert_req)
        for _ in range(_SERIAL_ATTEMPTS):
            serial = self._serials()
            content = unit.tst_info.encode(
                request, policy=policy, serial_number=serial, gen_time=gen_time
            )
            signed_attributes = template.signed_attributes(content)
            token = template.assemble(
                content, signed_attributes, unit.signer.sign(signed_attributes)
            )
            record = TokenRecord(
                serial_hex=serial_hex(serial),
                unit=unit.name,
                gen_time=gen_time,
                policy=policy,
                hash_algorithm=request.hash_algorithm,
                imprint=request.digest,
                token=token,
            )
            try:
                self._log.add(record)
            except Conflict:
                log.warning("time-stamp serial collision on unit %s; drawing again", unit.name)
                continue
            return IssuedToken(record.serial_hex, gen_time, unit.name, policy, token)
        raise ServiceUnavailable(
            "no unused serial number found", failure_info=protocol.SYSTEM_FAILURE
        )
