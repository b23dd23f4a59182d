"""Whatever the body, the TSA answers with a TimeStampResp and never raises."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tsa_support import authority, request
from timestamp import TimestampAuthority, parse_response
from trust.db import Database
from trust.migrations import upgrade

FUZZ = settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> TimestampAuthority:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('tsa') / 'trust.db'}")
    upgrade(db)
    return authority(db)


@cache
def sample() -> bytes:
    return request(b"fuzz", "sm3", policy="1.2.156.112233.3.1")


def answered(tsa: TimestampAuthority, body: bytes) -> None:
    parsed = parse_response(tsa.respond(body))
    assert parsed.status in ("granted", "rejection")
    assert (parsed.token is not None) == (parsed.status == "granted")


@FUZZ
@given(body=st.binary(max_size=1024))
def test_random_bodies(tsa: TimestampAuthority, body: bytes) -> None:
    answered(tsa, body)


@FUZZ
@given(data=st.data())
def test_mutated_and_truncated_requests(tsa: TimestampAuthority, data: st.DataObject) -> None:
    body = bytearray(sample())
    for _ in range(data.draw(st.integers(0, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    answered(tsa, bytes(body[: data.draw(st.integers(0, len(body)))]))


@FUZZ
@given(data=st.data())
def test_huge_lengths(tsa: TimestampAuthority, data: st.DataObject) -> None:
    body = sample()
    i = data.draw(st.integers(0, len(body) - 2))
    size = data.draw(st.integers(1, 8))
    claimed = data.draw(st.integers(0, 2 ** (8 * size) - 1)).to_bytes(size, "big")
    answered(tsa, body[: i + 1] + bytes([0x80 | size]) + claimed + body[i + 2 :])
