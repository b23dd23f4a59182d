"""In-process coordination: the embedded default, for a single worker process.

Everything lives in dictionaries behind one lock, so it is shared by the threads
of this process and by nobody else: running several workers needs the Redis
implementation. TTLs follow the injected clock, so tests can move time with a
``FakeClock`` instead of sleeping. Nothing here can be "down", so nothing raises
``CoordinationUnavailable``.
"""

from __future__ import annotations

import logging
import math
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from trust.clock import Clock, SystemClock
from trust.coordination import (
    Coordination,
    IdempotencyClaim,
    IdempotencyState,
    LockHandle,
    RateDecision,
    StoredResponse,
    Subscription,
)
from trust.errors import IdempotencyConflict

log = logging.getLogger(__name__)

# Slack for float rounding in GCRA comparisons (seconds), as in the Redis script.
_EPSILON = 1e-6
# Expired entries are dropped every this many writes, so memory stays bounded
# by the live entries without a timer thread.
_SWEEP_EVERY = 1024


@dataclass
class _IdemRecord:
    fingerprint: str
    expires_at: float
    ttl: float
    token: str | None  # set while in progress
    response: StoredResponse | None  # set once completed


class MemoryCoordination(Coordination):
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._mutex = threading.Lock()
        self._writes = 0
        self._tats: dict[str, float] = {}
        self._nonces: dict[tuple[str, str], float] = {}
        self._idem: dict[tuple[str, str], _IdemRecord] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, int] = {}
        self._subscribers: dict[str, list[_MemorySubscription]] = {}

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _wrote(self, now: float) -> None:
        """Count a write and, now and then, drop expired entries. Call with the mutex held."""
        self._writes += 1
        if self._writes % _SWEEP_EVERY:
            return
        self._tats = {k: t for k, t in self._tats.items() if t > now}
        self._nonces = {k: t for k, t in self._nonces.items() if t > now}
        self._idem = {k: r for k, r in self._idem.items() if r.expires_at > now}
        self._locks = {k: v for k, v in self._locks.items() if v[1] > now}

    # --- rate limiting ---------------------------------------------------------

    def _hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        interval = window_seconds / limit
        with self._mutex:
            now = self._now()
            tat = max(self._tats.get(key, now), now)
            new_tat = tat + interval
            allow_at = new_tat - window_seconds
            if allow_at - now > _EPSILON:
                return RateDecision(False, 0, tat - now, allow_at - now)
            self._tats[key] = new_tat
            self._wrote(now)
        remaining = math.floor((now + window_seconds - new_tat + _EPSILON) / interval)
        return RateDecision(True, remaining, new_tat - now, 0.0)

    # --- replay / nonce cache -------------------------------------------------

    def _remember_once(self, namespace: str, value: str, ttl: float) -> bool:
        with self._mutex:
            now = self._now()
            if self._nonces.get((namespace, value), now) > now:
                return False
            self._nonces[(namespace, value)] = now + ttl
            self._wrote(now)
            return True

    # --- idempotency keys ------------------------------------------------------

    def _begin_once(
        self, scope: str, key: str, fingerprint: str, ttl: float, claim_ttl: float
    ) -> IdempotencyState | None:
        with self._mutex:
            now = self._now()
            record = self._idem.get((scope, key))
            if record is None or record.expires_at <= now:
                token = secrets.token_hex(16)
                self._idem[(scope, key)] = _IdemRecord(
                    fingerprint, now + claim_ttl, ttl, token, None
                )
                self._wrote(now)
                return IdempotencyState(claim=IdempotencyClaim(scope, key, token))
            if record.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for a different request",
                    reason="fingerprint_mismatch",
                )
            if record.response is None:
                return None
            return IdempotencyState(response=record.response)

    def _owned(self, claim: IdempotencyClaim, now: float) -> _IdemRecord | None:
        """The record if ``claim`` still holds it. Call with the mutex held."""
        record = self._idem.get((claim.scope, claim.key))
        if record is None or record.expires_at <= now or record.token != claim.token:
            return None
        return record

    def complete(self, claim: IdempotencyClaim, response: StoredResponse) -> bool:
        with self._mutex:
            now = self._now()
            record = self._owned(claim, now)
            if record is None:
                return False
            record.token = None
            record.response = response
            record.expires_at = now + record.ttl
            return True

    def abandon(self, claim: IdempotencyClaim) -> None:
        with self._mutex:
            if self._owned(claim, self._now()) is not None:
                del self._idem[(claim.scope, claim.key)]

    # --- locks -------------------------------------------------------------------

    def _try_lock(self, handle: LockHandle, ttl: float) -> bool:
        with self._mutex:
            now = self._now()
            held = self._locks.get(handle.name)
            if held is not None and held[1] > now:
                return False
            self._locks[handle.name] = (handle.token, now + ttl)
            self._wrote(now)
            return True

    def release_lock(self, handle: LockHandle) -> bool:
        with self._mutex:
            held = self._locks.get(handle.name)
            if held is None or held[0] != handle.token or held[1] <= self._now():
                return False
            del self._locks[handle.name]
            return True

    # --- counters ------------------------------------------------------------------

    def incr(self, name: str, amount: int = 1) -> int:
        with self._mutex:
            value = self._counters.get(name, 0) + amount
            self._counters[name] = value
            return value

    def get_counter(self, name: str) -> int:
        with self._mutex:
            return self._counters.get(name, 0)

    # --- broadcast -------------------------------------------------------------------

    def publish(self, channel: str, message: str) -> None:
        with self._mutex:
            targets = list(self._subscribers.get(channel, ()))
        for subscription in targets:
            subscription.deliver(message)

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        subscription = _MemorySubscription(self, channel, callback)
        with self._mutex:
            self._subscribers.setdefault(channel, []).append(subscription)
        return subscription

    def _unsubscribe(self, subscription: _MemorySubscription) -> None:
        with self._mutex:
            listeners = self._subscribers.get(subscription.channel, [])
            if subscription in listeners:
                listeners.remove(subscription)
            if not listeners:
                self._subscribers.pop(subscription.channel, None)

    # --- health and lifecycle ---------------------------------------------------------

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._mutex:
            subscriptions = [s for subs in self._subscribers.values() for s in subs]
        for subscription in subscriptions:
            subscription.close()


class _MemorySubscription(Subscription):
    """Delivers on its own thread, like the Redis subscription, so callbacks never
    run on (or block) the publisher's thread."""

    def __init__(
        self, owner: MemoryCoordination, channel: str, callback: Callable[[str], None]
    ) -> None:
        self.channel = channel
        self._owner = owner
        self._callback = callback
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"coordination-sub-{channel}", daemon=True
        )
        self._thread.start()

    def deliver(self, message: str) -> None:
        self._queue.put(message)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self._callback(message)
            except Exception:
                log.exception("subscriber of %r failed", self.channel)

    def close(self) -> None:
        self._owner._unsubscribe(self)
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
