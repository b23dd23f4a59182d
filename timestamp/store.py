"""Where issued tokens are recorded: the ``TokenLog`` the TSA needs, and its SQL form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from timestamp.schema import tsa_token
from trust.db import Database
from trust.errors import Conflict, StorageUnavailable

_INSERT = insert(tsa_token)


@dataclass(frozen=True)
class TokenRecord:
    serial_hex: str
    unit: str
    gen_time: datetime
    policy: str
    hash_algorithm: str
    imprint: bytes
    token: bytes


class TokenLog(Protocol):
    def add(self, record: TokenRecord) -> None:
        """Store ``record``; ``Conflict`` when its serial number is already taken."""

    def get(self, serial_hex: str) -> TokenRecord | None: ...


class SqlTokenLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: TokenRecord) -> None:
        row = {
            "serial_hex": record.serial_hex,
            "unit": record.unit,
            "gen_time": record.gen_time.isoformat(timespec="microseconds"),
            "policy": record.policy,
            "hash_algorithm": record.hash_algorithm,
            "imprint_hex": record.imprint.hex(),
            "token": record.token,
        }
        # A plain connection and a prebuilt statement: once per token, an ORM session
        # and a freshly built insert cost more than the SQL itself.
        try:
            with self._db.engine.begin() as conn:
                conn.execute(_INSERT, row)
        except IntegrityError:
            raise Conflict("time-stamp serial number already used") from None
        except OperationalError as exc:
            raise StorageUnavailable("token log storage failed") from exc

    def get(self, serial_hex: str) -> TokenRecord | None:
        with self._db.session() as s:
            row = s.execute(select(tsa_token).where(tsa_token.c.serial_hex == serial_hex)).first()
        if row is None:
            return None
        return TokenRecord(
            serial_hex=row.serial_hex,
            unit=row.unit,
            gen_time=datetime.fromisoformat(row.gen_time),
            policy=row.policy,
            hash_algorithm=row.hash_algorithm,
            imprint=bytes.fromhex(row.imprint_hex),
            token=row.token,
        )
