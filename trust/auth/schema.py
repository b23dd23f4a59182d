"""Tables of API tokens and their grants (created by the ``auth`` migration chain)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from trust.db import metadata


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; the service keeps UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


auth_token = Table(
    "auth_token",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("label", String(200), nullable=False),
    # SM3 of the whole token; the token itself is never stored.
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

auth_grant = Table(
    "auth_grant",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "token_id",
        String(32),
        ForeignKey("auth_token.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(32), nullable=False, index=True),
    Column("resource_type", String(64), nullable=True),
    # Sorted list of ids; NULL means the role holds on every resource.
    Column("resource_ids", JSON(none_as_null=True), nullable=True),
)
