"""The audit log's write transaction, on the database driver directly.

An append is four short statements in one transaction (lock the head, insert the
record, move the head, sometimes insert a checkpoint). Through SQLAlchemy's
``Connection.execute`` their bookkeeping cost several times the SQL itself, and
every key-store signature waits for an append, so the write path uses a pooled
DBAPI connection with fixed SQL (SQLite: ``:name`` parameters, PostgreSQL through
psycopg: ``%(name)s``, compiled once from the tables). Reading and verifying stay on SQLAlchemy.

The driver's IntegrityError (only a head row out of step with the records, i.e.
tampering, makes a sequence clash) becomes ``AuditChainBroken``; its
OperationalError and SQLAlchemy's connection errors become ``StorageUnavailable``.
Either way the transaction is rolled back and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from trust.audit.schema import audit_checkpoint, audit_head, audit_record
from trust.db import Database
from trust.errors import AuditChainBroken, StorageUnavailable

_RECORD_COLUMNS = (
    "seq",
    "recorded_at",
    "actor",
    "action",
    "target",
    "outcome",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)
_CHECKPOINT_COLUMNS = ("seq", "hash", "created_at", "key_id", "algorithm", "signature")


class ChainTx:
    """The statements of one locked write transaction (see ``chain_transaction``)."""

    def __init__(self, cursor: Any, sql: dict[str, str]) -> None:
        self._cursor = cursor
        self._sql = sql

    def head(self) -> tuple[int, bytes]:
        self._cursor.execute(self._sql["head"], {"head_id": 1})
        seq, digest = self._cursor.fetchone()
        return int(seq), bytes(digest)

    def insert_record(self, values: dict[str, Any]) -> None:
        self._cursor.execute(self._sql["insert_record"], values)

    def move_head(self, seq: int, digest: bytes) -> None:
        self._cursor.execute(
            self._sql["move_head"], {"head_id": 1, "new_seq": seq, "new_hash": digest}
        )

    def checkpoint_at(self, seq: int) -> dict[str, Any] | None:
        self._cursor.execute(self._sql["checkpoint_at"], {"at": seq})
        row = self._cursor.fetchone()
        return None if row is None else dict(zip(_CHECKPOINT_COLUMNS, row, strict=True))

    def insert_checkpoint(self, values: dict[str, Any]) -> None:
        self._cursor.execute(self._sql["insert_checkpoint"], values)


def statements(dialect: str) -> dict[str, str]:
    """The write path's SQL, compiled once from the tables for the driver's named style."""
    target = (
        sqlite.dialect(paramstyle="named")
        if dialect == "sqlite"
        else postgresql.dialect(paramstyle="pyformat")
    )

    def sql(statement: Any, columns: tuple[str, ...] | None = None) -> str:
        keys = list(columns) if columns is not None else None
        return str(statement.compile(dialect=target, column_keys=keys))

    head = audit_head.c.id == bindparam("head_id")
    return {
        # SQLite drops FOR UPDATE: BEGIN IMMEDIATE holds the write lock already.
        "head": sql(select(audit_head.c.seq, audit_head.c.hash).where(head).with_for_update()),
        "insert_record": sql(insert(audit_record), _RECORD_COLUMNS),
        "move_head": sql(
            update(audit_head)
            .where(head)
            .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
        ),
        "checkpoint_at": sql(
            select(*(audit_checkpoint.c[c] for c in _CHECKPOINT_COLUMNS)).where(
                audit_checkpoint.c.seq == bindparam("at")
            )
        ),
        "insert_checkpoint": sql(insert(audit_checkpoint), _CHECKPOINT_COLUMNS),
    }


@contextmanager
def chain_transaction(db: Database, sql: dict[str, str]) -> Iterator[ChainTx]:
    """A write transaction holding the chain head; commits when the block ends."""
    dbapi = db.engine.dialect.loaded_dbapi
    try:
        raw = db.engine.raw_connection()
    except SQLAlchemyError as exc:
        raise StorageUnavailable("audit log storage failed") from exc
    try:
        cursor = raw.cursor()
        try:
            if db.dialect == "sqlite":
                # pysqlite would begin DEFERRED and could fail to upgrade to a write
                # lock later; IMMEDIATE takes it now, waiting up to busy_timeout.
                cursor.execute("BEGIN IMMEDIATE")
            yield ChainTx(cursor, sql)
            raw.commit()
        except BaseException as exc:
            _rollback(raw)
            if isinstance(exc, dbapi.IntegrityError):
                raise AuditChainBroken(
                    "audit chain head does not match the records; run `trustctl audit verify`"
                ) from exc
            if isinstance(exc, dbapi.OperationalError):
                raise StorageUnavailable("audit log storage failed") from exc
            raise
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool


def _rollback(raw: Any) -> None:
    # The first error is the one to report; a failed rollback leaves the pool to discard it.
    with suppress(Exception):
        raw.rollback()
