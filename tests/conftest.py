"""Shared fixtures. Service-backed tests skip when the service is unreachable,
unless TRUST_TEST_REQUIRE_SERVICES=1 (CI), where they fail instead."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

REQUIRE_SERVICES = os.environ.get("TRUST_TEST_REQUIRE_SERVICES") == "1"
# The issues' full-size load figures (10,000 certificates, 10,000 keys rewrapped) take
# minutes; the suite runs the same tests at a smaller size unless this is set.
FULL_SCALE = os.environ.get("TRUST_TEST_FULL_SCALE") == "1"


# Wall-clock deadlines make property tests flaky on a loaded 2-core CI machine; the
# suite bounds time where it matters with explicit per-test timings instead.
hypothesis_settings.register_profile("trust", deadline=None)
hypothesis_settings.load_profile("trust")


def scale(full: int, reduced: int) -> int:
    """The size of a load test: ``full`` with TRUST_TEST_FULL_SCALE=1, else ``reduced``."""
    return full if FULL_SCALE else reduced


def need_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (CI) a test whose external service is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} required (TRUST_TEST_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


# --- databases ---------------------------------------------------------------

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402

PG_ADMIN_URL = os.environ.get("TRUST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    from sqlalchemy.exc import OperationalError

    name = f"trust_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        need_service("postgresql", str(exc).splitlines()[0])
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'trust.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request) -> str:  # type: ignore[no-untyped-def]
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")
