"""Coordination: every case runs against the in-process and the Redis implementation.

The Redis cases use a fresh key prefix per test and delete its keys afterwards;
the cross-process cases start worker processes with ``spawn`` so that nothing is
shared with the test process but Redis.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.conftest import need_service
from trust.clock import FakeClock
from trust.coordination import (
    Coordination,
    IdempotencyClaim,
    LockHandle,
    StoredResponse,
    build_coordination,
)
from trust.coordination.memory import MemoryCoordination
from trust.coordination.redis_backend import RedisCoordination
from trust.errors import CoordinationUnavailable, IdempotencyConflict, ResourceBusy
from trust.settings import Settings

REDIS_URL = os.environ.get("TRUST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"

OK = StoredResponse(201, (("content-type", "application/json"), ("location", "/x/1")), b'{"id":1}')


@dataclass
class Env:
    """One implementation under test.

    ``coord`` and ``other`` share state: for Redis they are separate clients
    (separate connections), as two workers would be.
    """

    kind: str
    coord: Coordination
    other: Coordination
    advance: Callable[[float], None]
    prefix: str = ""


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        need_service("redis", f"{REDIS_URL}: {exc}")
    return client


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = _redis_or_skip()
    prefix = f"trust-test:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if request.param == "memory":
        clock = FakeClock()
        coord = MemoryCoordination(clock)
        yield Env("memory", coord, coord, clock.advance)
        coord.close()
        return
    prefix = request.getfixturevalue("redis_prefix")
    coord = RedisCoordination(REDIS_URL, prefix)
    other = RedisCoordination(REDIS_URL, prefix)
    yield Env("redis", coord, other, time.sleep, prefix)
    coord.close()
    other.close()


def _run_threads(n: int, target: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive()


# --- rate limiting -----------------------------------------------------------------

WINDOW = 0.3


def test_rate_limit_allows_limit_then_refuses(env: Env) -> None:
    decisions = [env.coord.hit("client-a", 3, WINDOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].retry_after == 0
    refused = decisions[3]
    assert 0 < refused.retry_after <= WINDOW / 3 + 0.01
    assert 0 < refused.reset_after <= WINDOW + 0.01
    # A refusal consumes nothing, and other clients have their own budget.
    assert not env.other.hit("client-a", 3, WINDOW).allowed
    assert env.other.hit("client-b", 3, WINDOW).allowed


def test_rate_limit_refills(env: Env) -> None:
    for _ in range(3):
        assert env.coord.hit("client", 3, WINDOW).allowed
    env.advance(WINDOW / 3 + 0.02)
    assert env.coord.hit("client", 3, WINDOW).allowed  # one interval: one token back
    assert not env.coord.hit("client", 3, WINDOW).allowed
    env.advance(WINDOW + 0.02)
    decisions = [env.coord.hit("client", 3, WINDOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


def test_rate_limit_rejects_nonsense(env: Env) -> None:
    with pytest.raises(ValueError):
        env.coord.hit("client", 0, 1.0)
    with pytest.raises(ValueError):
        env.coord.hit("client", 1, 0)


# --- replay / nonce cache -----------------------------------------------------------


def test_remember_once(env: Env) -> None:
    assert env.coord.remember_once("tsa-nonce", "n1", 0.3)
    assert not env.other.remember_once("tsa-nonce", "n1", 0.3)
    assert env.coord.remember_once("tsa-nonce", "n2", 0.3)
    assert env.coord.remember_once("other-ns", "n1", 0.3)
    env.advance(0.35)
    assert env.coord.remember_once("tsa-nonce", "n1", 0.3)


def test_remember_once_concurrent_exactly_one(env: Env) -> None:
    firsts: list[bool] = []

    def attempt() -> None:
        firsts.append(env.coord.remember_once("jti", "token-1", 5))

    _run_threads(8, attempt)
    assert sorted(firsts) == [False] * 7 + [True]


# --- idempotency keys ---------------------------------------------------------------


def test_idempotency_claim_complete_replay(env: Env) -> None:
    first = env.coord.begin("client-a", "key-1", "fp-1", ttl=60)
    assert first.claim is not None and first.response is None
    assert env.coord.complete(first.claim, OK)
    again = env.other.begin("client-a", "key-1", "fp-1", ttl=60)
    assert again.claim is None
    assert again.response == OK


def test_idempotency_keys_are_per_scope_without_ambiguity(env: Env) -> None:
    state = env.coord.begin("a:b", "c", "fp", ttl=60)
    assert state.claim is not None
    assert env.coord.begin("a", "b:c", "other-fp", ttl=60).claim is not None
    assert env.coord.begin("client-b", "c", "other-fp", ttl=60).claim is not None


def test_idempotency_fingerprint_mismatch(env: Env) -> None:
    state = env.coord.begin("client-a", "key-1", "fp-1", ttl=60)
    assert state.claim is not None
    with pytest.raises(IdempotencyConflict) as in_progress:
        env.other.begin("client-a", "key-1", "fp-2", ttl=60, wait_timeout=1)
    assert in_progress.value.extra["reason"] == "fingerprint_mismatch"
    env.coord.complete(state.claim, OK)
    with pytest.raises(IdempotencyConflict) as done:
        env.other.begin("client-a", "key-1", "fp-2", ttl=60)
    assert done.value.extra["reason"] == "fingerprint_mismatch"


def test_idempotency_in_progress_conflicts_without_wait(env: Env) -> None:
    assert env.coord.begin("client-a", "key-1", "fp", ttl=60).claim is not None
    started = time.monotonic()
    with pytest.raises(IdempotencyConflict) as exc:
        env.other.begin("client-a", "key-1", "fp", ttl=60, wait_timeout=0.1)
    assert exc.value.extra["reason"] == "in_progress"
    assert 0.1 <= time.monotonic() - started < 1


def test_idempotency_waiter_gets_first_response(env: Env) -> None:
    state = env.coord.begin("client-a", "key-1", "fp", ttl=60)
    assert state.claim is not None
    claim = state.claim
    finisher = threading.Timer(0.2, lambda: env.coord.complete(claim, OK))
    finisher.start()
    replay = env.other.begin("client-a", "key-1", "fp", ttl=60, wait_timeout=3)
    finisher.join()
    assert replay.response == OK


def test_idempotency_abandoned_claim_can_be_retried(env: Env) -> None:
    state = env.coord.begin("client-a", "key-1", "fp", ttl=60)
    assert state.claim is not None
    env.coord.abandon(state.claim)
    retry = env.other.begin("client-a", "key-1", "fp", ttl=60)
    assert retry.claim is not None
    # The stale claim can neither complete nor abandon the retry's claim.
    assert not env.coord.complete(state.claim, OK)
    env.coord.abandon(state.claim)
    assert env.other.complete(retry.claim, OK)
    assert env.coord.begin("client-a", "key-1", "fp", ttl=60).response == OK


def test_idempotency_waiter_takes_over_abandoned_claim(env: Env) -> None:
    state = env.coord.begin("client-a", "key-1", "fp", ttl=60)
    assert state.claim is not None
    claim = state.claim
    quitter = threading.Timer(0.2, lambda: env.coord.abandon(claim))
    quitter.start()
    waiter = env.other.begin("client-a", "key-1", "fp", ttl=60, wait_timeout=3)
    quitter.join()
    assert waiter.claim is not None


def test_idempotency_stuck_claim_expires(env: Env) -> None:
    stuck = env.coord.begin("client-a", "key-1", "fp", ttl=60, claim_ttl=0.2)
    assert stuck.claim is not None
    env.advance(0.3)
    retry = env.other.begin("client-a", "key-1", "fp", ttl=60, claim_ttl=0.2)
    assert retry.claim is not None
    assert not env.coord.complete(stuck.claim, OK)  # the late worker must not overwrite
    assert env.other.complete(retry.claim, OK)


def test_idempotency_response_expires_after_ttl(env: Env) -> None:
    state = env.coord.begin("client-a", "key-1", "fp", ttl=0.2, claim_ttl=30)
    assert state.claim is not None
    env.coord.complete(state.claim, OK)
    env.advance(0.3)
    assert env.coord.begin("client-a", "key-1", "other-fp", ttl=0.2).claim is not None


def test_idempotency_concurrent_threads_work_once(env: Env) -> None:
    results: list[bytes] = []

    def request() -> None:
        state = env.coord.begin("client-a", "key-1", "fp", ttl=60, wait_timeout=5)
        if state.claim is not None:
            env.coord.incr("work")
            time.sleep(0.1)
            env.coord.complete(state.claim, OK)
            results.append(OK.body)
        else:
            assert state.response is not None
            results.append(state.response.body)

    _run_threads(6, request)
    assert env.coord.get_counter("work") == 1
    assert results == [OK.body] * 6


# --- locks ---------------------------------------------------------------------------


def test_lock_mutual_exclusion_threads(env: Env) -> None:
    shared = {"value": 0, "overlaps": 0}

    def worker() -> None:
        for _ in range(10):
            with env.coord.lock("keystore-rotate", ttl=5, wait_timeout=10):
                if env.coord.incr("inside") != 1:
                    shared["overlaps"] += 1
                value = shared["value"]
                time.sleep(0.001)  # invite a lost update if exclusion fails
                shared["value"] = value + 1
                env.coord.incr("inside", -1)

    _run_threads(4, worker)
    assert shared == {"value": 40, "overlaps": 0}


def test_lock_wrong_token_release_does_nothing(env: Env) -> None:
    handle = env.coord.acquire_lock("L", ttl=5, wait_timeout=0)
    assert not env.other.release_lock(LockHandle("L", "not-the-token"))
    with pytest.raises(ResourceBusy):
        env.other.acquire_lock("L", ttl=5, wait_timeout=0.05)
    assert env.coord.release_lock(handle)
    assert not env.coord.release_lock(handle)  # already released
    env.other.release_lock(env.other.acquire_lock("L", ttl=5, wait_timeout=0))


def test_lock_expires_and_stale_holder_cannot_release(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), env.coord.lock("L", ttl=0.2, wait_timeout=0):
        env.advance(0.3)
        successor = env.other.acquire_lock("L", ttl=5, wait_timeout=0)
    # Leaving the block tried to release with the stale token: the successor still holds it.
    assert "expired" in caplog.text
    with pytest.raises(ResourceBusy):
        env.coord.acquire_lock("L", ttl=5, wait_timeout=0)
    assert env.other.release_lock(successor)


def test_lock_waits_for_release(env: Env) -> None:
    handle = env.coord.acquire_lock("L", ttl=5, wait_timeout=0)
    releaser = threading.Timer(0.1, lambda: env.coord.release_lock(handle))
    releaser.start()
    started = time.monotonic()
    with env.other.lock("L", ttl=5, wait_timeout=3):
        assert time.monotonic() - started >= 0.09
    releaser.join()


# --- counters ------------------------------------------------------------------------


def test_counters(env: Env) -> None:
    assert env.coord.get_counter("certs-issued") == 0
    assert env.coord.incr("certs-issued") == 1
    assert env.other.incr("certs-issued", 5) == 6
    assert env.coord.incr("certs-issued", -2) == 4
    assert env.other.get_counter("certs-issued") == 4


def test_counters_concurrent_threads(env: Env) -> None:
    def worker() -> None:
        for _ in range(100):
            env.coord.incr("hits")

    _run_threads(4, worker)
    assert env.coord.get_counter("hits") == 400


# --- broadcast -----------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, message: str) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 1.0) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


def test_broadcast_reaches_subscribers_within_one_second(env: Env) -> None:
    first, second, elsewhere = _Inbox(), _Inbox(), _Inbox()
    subs = [
        env.other.subscribe("key-cache", first),
        env.other.subscribe("key-cache", second),
        env.other.subscribe("unrelated", elsewhere),
    ]
    started = time.monotonic()
    env.coord.publish("key-cache", "key-7 rotated")
    env.coord.publish("key-cache", "key-8 retired")
    assert first.wait_for(2) == ["key-7 rotated", "key-8 retired"]
    assert second.wait_for(2) == ["key-7 rotated", "key-8 retired"]
    assert time.monotonic() - started < 1
    assert elsewhere.messages == []
    for sub in subs:
        sub.close()


def test_broadcast_close_stops_delivery_and_callback_errors_are_contained(env: Env) -> None:
    inbox = _Inbox()

    def flaky(message: str) -> None:
        if message == "boom":
            raise RuntimeError("subscriber bug")
        inbox(message)

    sub = env.other.subscribe("ch", flaky)
    env.coord.publish("ch", "boom")
    env.coord.publish("ch", "after")
    assert inbox.wait_for(1) == ["after"]
    sub.close()
    env.coord.publish("ch", "too late")
    time.sleep(0.1)
    assert inbox.messages == ["after"]


# --- health and construction ---------------------------------------------------------


def test_ping(env: Env) -> None:
    env.coord.ping()


def test_build_coordination_picks_backend(redis_prefix: str) -> None:
    memory = build_coordination(Settings())
    assert isinstance(memory, MemoryCoordination)
    remote = build_coordination(Settings(redis_url=REDIS_URL, redis_prefix=redis_prefix))
    assert isinstance(remote, RedisCoordination)
    remote.incr("x")
    assert redis.Redis.from_url(REDIS_URL).get(redis_prefix + "counter:x") == b"1"
    remote.close()


# --- Redis down ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.ping(),
        lambda c: c.hit("k", 1, 1),
        lambda c: c.remember_once("ns", "v", 1),
        lambda c: c.begin("s", "k", "fp", ttl=1, wait_timeout=1),
        lambda c: c.complete(IdempotencyClaim("s", "k", "t"), OK),
        lambda c: c.abandon(IdempotencyClaim("s", "k", "t")),
        lambda c: c.acquire_lock("L", ttl=1, wait_timeout=1),
        lambda c: c.release_lock(LockHandle("L", "t")),
        lambda c: c.incr("n"),
        lambda c: c.get_counter("n"),
        lambda c: c.publish("ch", "m"),
        lambda c: c.subscribe("ch", lambda m: None),
    ],
    ids=[
        "ping",
        "hit",
        "remember_once",
        "begin",
        "complete",
        "abandon",
        "acquire_lock",
        "release_lock",
        "incr",
        "get_counter",
        "publish",
        "subscribe",
    ],
)
def test_redis_down_fails_fast_and_closed(operation: Callable[[Coordination], Any]) -> None:
    coord = RedisCoordination(DEAD_REDIS_URL, "trust-test:down:")
    started = time.monotonic()
    with pytest.raises(CoordinationUnavailable) as exc:
        operation(coord)
    assert time.monotonic() - started < 2
    assert "127.0.0.1" not in exc.value.detail  # no topology in client-facing text
    coord.close()


# --- across processes (Redis) ----------------------------------------------------------


def _idempotency_worker(prefix: str, barrier: Any, results: Any) -> None:
    coord = RedisCoordination(REDIS_URL, prefix)
    barrier.wait()
    state = coord.begin("client-a", "race-key", "fp", ttl=60, claim_ttl=10, wait_timeout=10)
    if state.claim is not None:
        coord.incr("work")
        time.sleep(0.3)  # long enough that the other process arrives while in progress
        body = f"done by {os.getpid()}".encode()
        coord.complete(state.claim, StoredResponse(200, (), body))
        results.put(("worked", body))
    else:
        assert state.response is not None
        results.put(("replayed", state.response.body))
    coord.close()


def _lock_worker(prefix: str, barrier: Any, results: Any) -> None:
    coord = RedisCoordination(REDIS_URL, prefix)
    raw = redis.Redis.from_url(REDIS_URL)
    barrier.wait()
    for _ in range(15):
        with coord.lock("shared", ttl=5, wait_timeout=10):
            if coord.incr("inside") != 1:
                coord.incr("overlaps")
            value = int(raw.get(prefix + "plain") or 0)  # unguarded read-modify-write
            time.sleep(0.001)
            raw.set(prefix + "plain", value + 1)
            coord.incr("inside", -1)
        coord.incr("hits")  # doubles as the counter-under-processes check
    results.put("ok")
    raw.close()
    coord.close()


def _spawn(target: Callable[..., None], prefix: str, n: int) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(prefix, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    return out


def test_idempotency_across_processes_does_work_once(redis_prefix: str) -> None:
    outcomes = _spawn(_idempotency_worker, redis_prefix, 2)
    assert sorted(kind for kind, _ in outcomes) == ["replayed", "worked"]
    assert outcomes[0][1] == outcomes[1][1]
    coord = RedisCoordination(REDIS_URL, redis_prefix)
    assert coord.get_counter("work") == 1
    coord.close()


def test_lock_and_counters_across_processes(redis_prefix: str) -> None:
    assert _spawn(_lock_worker, redis_prefix, 3) == ["ok"] * 3
    coord = RedisCoordination(REDIS_URL, redis_prefix)
    assert coord.get_counter("overlaps") == 0
    assert coord.get_counter("hits") == 45
    assert redis.Redis.from_url(REDIS_URL).get(redis_prefix + "plain") == b"45"
    coord.close()


def test_memory_drops_expired_entries() -> None:
    clock = FakeClock()
    coord = MemoryCoordination(clock)
    for i in range(3000):
        coord.remember_once("ns", str(i), 0.5)
        coord.hit(f"client-{i}", 10, 0.5)
        clock.advance(0.01)
    # Without the periodic sweep each dictionary would hold 3000 entries.
    assert len(coord._nonces) < 1200
    assert len(coord._tats) < 1200
