"""Where issued tokens are recorded: the ``TokenLog`` the TSA needs, and its SQL form."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from timestamp.schema import tsa_token
from trust.db import Database
from trust.errors import Conflict, StorageUnavailable

_COLUMNS = (
    "serial_hex",
    "unit",
    "gen_time",
    "policy",
    "hash_algorithm",
    "imprint_hex",
    "token",
)


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
        # Once per token, SQLAlchemy's statement bookkeeping costs more than the SQL: the
        # insert goes to a pooled driver connection as SQL compiled once for its dialect.
        target = (
            sqlite.dialect(paramstyle="named")
            if db.dialect == "sqlite"
            else postgresql.dialect(paramstyle="pyformat")
        )
        self._insert = str(insert(tsa_token).compile(dialect=target, column_keys=_COLUMNS))
        self._driver = db.engine.dialect.loaded_dbapi

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
        try:
            raw = self._db.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise StorageUnavailable("token log storage failed") from exc
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self._insert, row)
                raw.commit()
            finally:
                cursor.close()
        except self._driver.IntegrityError:
            with suppress(Exception):
                raw.rollback()
            raise Conflict("time-stamp serial number already used") from None
        except self._driver.Error as exc:
            with suppress(Exception):  # the pool discards a connection that fails here
                raw.rollback()
            raise StorageUnavailable("token log storage failed") from exc
        finally:
            raw.close()  # back to the pool

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
