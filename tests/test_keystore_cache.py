"""The key cache: a change made by one key store instance (another worker) reaches the
others within a second through the coordination broadcast, on Redis and in process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis

from keystore.kek.local import LocalKek
from tests.conftest import need_service
from tests.test_keystore import ADMIN, APP, Env, open_env, request
from trust.coordination import Coordination
from trust.coordination.memory import MemoryCoordination
from trust.coordination.redis_backend import RedisCoordination
from trust.errors import KeyDestroyed, KeySuspended, KeyUnusable

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def coordinations(request: pytest.FixtureRequest) -> Iterator[tuple[Coordination, Coordination]]:
    if request.param == "memory":
        shared = MemoryCoordination()
        yield shared, shared
        shared.close()
        return
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need_service("redis", str(exc))
    prefix = f"trust-test:{uuid.uuid4().hex}:"
    a, b = RedisCoordination(REDIS_URL, prefix), RedisCoordination(REDIS_URL, prefix)
    yield a, b
    a.close()
    b.close()


def _within(seconds: float, check: Callable[[], bool]) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"not within {seconds} s")


def _refuses(e: Env, key_id: str) -> bool:
    try:
        e.store.sign(key_id, b"m", APP)
    except KeyUnusable:
        return True
    return False


def test_change_in_one_worker_reaches_the_other_within_a_second(
    database_url: str, coordinations: tuple[Coordination, Coordination]
) -> None:
    kek = LocalKek(bytes(range(16)), source="test")
    # A TTL far longer than the test: only the broadcast can make the second worker see it.
    one = open_env(database_url, kek=kek, coordination=coordinations[0], cache_ttl=3600)
    two = open_env(database_url, kek=kek, coordination=coordinations[1], cache_ttl=3600)
    key_id = one.store.generate(request(), ADMIN).id
    assert two.store.sign(key_id, b"m", APP).version == 1  # cached in worker two

    one.store.rotate(key_id, ADMIN)
    _within(1.0, lambda: two.store.sign(key_id, b"m", APP).version == 2)

    one.store.suspend(key_id, ADMIN)
    _within(1.0, lambda: _refuses(two, key_id))
    with pytest.raises(KeySuspended):
        two.store.sign(key_id, b"m", APP)

    one.store.resume(key_id, ADMIN)
    _within(1.0, lambda: not _refuses(two, key_id))
    one.store.deactivate(key_id, ADMIN)
    one.store.schedule_destruction(key_id, ADMIN, wait=timedelta(0))
    one.store.destroy_due()
    _within(1.0, lambda: _refuses(two, key_id))
    with pytest.raises(KeyDestroyed):
        two.store.sign(key_id, b"m", APP)
    for e in (one, two):
        e.store.close()
        e.db.dispose()


def test_cache_serves_without_the_database(sqlite_url: str) -> None:
    e = open_env(sqlite_url, cache_ttl=3600)
    key_id = e.store.generate(request(), ADMIN).id
    e.store.sign(key_id, b"m", APP)
    entry = e.store._entry(key_id)
    e.store.sign(key_id, b"m", APP)
    assert e.store._entry(key_id) is entry and 1 in entry.secrets
