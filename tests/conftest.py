"""Shared fixtures. Service-backed tests skip when the service is unreachable,
unless TRUST_TEST_REQUIRE_SERVICES=1 (CI), where they fail instead."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("TRUST_TEST_REQUIRE_SERVICES") == "1"


def need_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (CI) a test whose external service is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} required (TRUST_TEST_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")
