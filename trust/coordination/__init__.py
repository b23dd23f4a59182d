"""Coordination between API worker processes: one interface, two implementations.

``build_coordination(settings)`` returns the in-process implementation
(:class:`~trust.coordination.memory.MemoryCoordination`) when ``settings.redis_url``
is unset, and the Redis one
(:class:`~trust.coordination.redis_backend.RedisCoordination`) when it is set. Both
give the same semantics, so code written against :class:`Coordination` does not
know which it has; only the Redis one is shared between processes and hosts.

Capabilities:

- rate limiting (:meth:`Coordination.hit`), GCRA: a token bucket of ``limit``
  tokens that refills completely in ``window_seconds``;
- a replay / nonce cache (:meth:`Coordination.remember_once`);
- idempotency keys (:meth:`Coordination.begin`, :meth:`Coordination.complete`,
  :meth:`Coordination.abandon`);
- a distributed lock with a TTL (:meth:`Coordination.lock`);
- atomic counters (:meth:`Coordination.incr`, :meth:`Coordination.get_counter`);
- a broadcast channel for cache invalidation (:meth:`Coordination.publish`,
  :meth:`Coordination.subscribe`);
- health (:meth:`Coordination.ping`).

Failure: when the backend cannot be reached every operation raises
:class:`trust.errors.CoordinationUnavailable` (the API answers 503: fail closed),
never a driver exception. Every claim, lock, nonce and rate-limit record has a
TTL (counters are the exception), so a worker that dies between two steps (an
idempotency claim, a lock) blocks others only until that TTL runs out. The one
exception to "raises" is the release at the end of a ``with lock(...)`` block:
the guarded work has already happened, so a failed release is logged and left
to the lock's TTL.

Durations are seconds (float). TTLs of the in-process implementation follow the
injected :class:`~trust.clock.Clock`; the Redis implementation uses the Redis
server's clock so that all workers agree. Wait timeouts are real (monotonic) time.
"""

from __future__ import annotations

import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from trust.clock import Clock
from trust.errors import IdempotencyConflict, ResourceBusy
from trust.settings import Settings

__all__ = [
    "Coordination",
    "IdempotencyClaim",
    "IdempotencyState",
    "LockHandle",
    "RateDecision",
    "StoredResponse",
    "Subscription",
    "build_coordination",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Polling bounds while waiting for a lock or an in-progress idempotency key:
# short enough to hand over quickly, long enough not to hammer Redis.
_POLL_MIN = 0.005
_POLL_MAX = 0.1


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one :meth:`Coordination.hit`.

    ``remaining``: further requests allowed right now (after this one, if allowed).
    ``reset_after``: seconds until the full ``limit`` is available again.
    ``retry_after``: seconds until the next request would be allowed (0 when
    ``allowed``); use it for the ``Retry-After`` header of a 429.
    """

    allowed: bool
    remaining: int
    reset_after: float
    retry_after: float


@dataclass(frozen=True)
class StoredResponse:
    """The response replayed for a repeated Idempotency-Key.

    ``headers`` is the subset of headers worth replaying (e.g. Content-Type,
    Location), in order; a name may repeat.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class IdempotencyClaim:
    """Proof that this caller owns an idempotency key; pass it to complete/abandon."""

    scope: str
    key: str
    token: str


@dataclass(frozen=True)
class IdempotencyState:
    """What :meth:`Coordination.begin` found: exactly one of the two fields is set.

    ``claim``: the key was free and is now this caller's; do the work, then call
    :meth:`Coordination.complete` (or :meth:`Coordination.abandon` on failure).
    ``response``: the work was already done for the same request; send this.
    """

    claim: IdempotencyClaim | None = None
    response: StoredResponse | None = None


@dataclass(frozen=True)
class LockHandle:
    """A held lock; the token tells this holder apart from any later one."""

    name: str
    token: str


class Subscription(ABC):
    """A live subscription; its callback runs on a background thread."""

    @abstractmethod
    def close(self) -> None:
        """Stop delivery; returns once the callback will not be called again."""


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def _poll(attempt: Callable[[], _T | None], wait_timeout: float) -> _T | None:
    """Call ``attempt`` until it returns a value or ``wait_timeout`` seconds have passed."""
    deadline = time.monotonic() + wait_timeout
    delay = _POLL_MIN
    while True:
        result = attempt()
        left = deadline - time.monotonic()
        if result is not None or left <= 0:
            return result
        time.sleep(min(delay, left))
        delay = min(delay * 2, _POLL_MAX)


class Coordination(ABC):
    """The coordination interface. Thread-safe; one instance per process."""

    # --- rate limiting ---------------------------------------------------------

    def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        """Count one request for ``key`` against ``limit`` requests per ``window_seconds``.

        GCRA (a token bucket without a timer): a fresh key allows a burst of
        ``limit`` requests, then one every ``window_seconds / limit``; after
        ``window_seconds`` without requests the full burst is available again.
        A refused request consumes nothing.
        """
        _check_positive(limit=limit, window_seconds=window_seconds)
        return self._hit(key, limit, window_seconds)

    @abstractmethod
    def _hit(self, key: str, limit: int, window_seconds: float) -> RateDecision: ...

    # --- replay / nonce cache -------------------------------------------------

    def remember_once(self, namespace: str, value: str, ttl: float) -> bool:
        """True the first time ``value`` is seen in ``namespace`` within ``ttl``; else False."""
        _check_positive(ttl=ttl)
        return self._remember_once(namespace, value, ttl)

    @abstractmethod
    def _remember_once(self, namespace: str, value: str, ttl: float) -> bool: ...

    # --- idempotency keys ------------------------------------------------------

    def begin(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        ttl: float,
        claim_ttl: float = 30.0,
        wait_timeout: float = 0.0,
    ) -> IdempotencyState:
        """Claim ``key`` in ``scope`` (e.g. the client id) or find its stored response.

        ``fingerprint`` identifies the request (e.g. a hash of method, path and
        body); ``ttl`` is how long a completed response is replayed; ``claim_ttl``
        is how long an unfinished claim holds the key: after it, a claim whose
        worker died is forgotten and a retry may claim the key again (so it must
        exceed the longest time the work can take).

        Returns a state with ``claim`` (do the work, then :meth:`complete` or
        :meth:`abandon`) or with ``response`` (the same request already
        completed: replay it). Raises :class:`~trust.errors.IdempotencyConflict`
        with ``extra["reason"]`` set to ``"fingerprint_mismatch"`` when the key
        was used for a different request, or ``"in_progress"`` when the same
        request is still running after ``wait_timeout`` seconds of waiting for
        it (0: do not wait). A waiter whose first holder abandons claims the key
        itself.
        """
        _check_positive(ttl=ttl, claim_ttl=claim_ttl)
        state = _poll(
            lambda: self._begin_once(scope, key, fingerprint, ttl, claim_ttl), wait_timeout
        )
        if state is None:
            raise IdempotencyConflict(
                "a request with this Idempotency-Key is still in progress", reason="in_progress"
            )
        return state

    @abstractmethod
    def _begin_once(
        self, scope: str, key: str, fingerprint: str, ttl: float, claim_ttl: float
    ) -> IdempotencyState | None:
        """One attempt of :meth:`begin`; None while another claim is in progress."""

    @abstractmethod
    def complete(self, claim: IdempotencyClaim, response: StoredResponse) -> bool:
        """Store ``response`` for the claimed key, replayed for ``ttl`` from now.

        False (nothing stored) when the claim is no longer this caller's: its
        ``claim_ttl`` ran out, and the key is free or claimed by a retry. The
        work has been done either way, so send the response regardless. If this
        raises :class:`~trust.errors.CoordinationUnavailable` the work has also
        been done; the claim expires after ``claim_ttl``.
        """

    @abstractmethod
    def abandon(self, claim: IdempotencyClaim) -> None:
        """Release a claim whose work failed, so that a retry can run it; no-op if lost."""

    # --- locks -------------------------------------------------------------------

    def acquire_lock(self, name: str, ttl: float, wait_timeout: float) -> LockHandle:
        """Take the lock ``name`` for at most ``ttl`` seconds, waiting up to ``wait_timeout``.

        Raises :class:`~trust.errors.ResourceBusy` when it is still held after the wait.
        """
        _check_positive(ttl=ttl)
        handle = LockHandle(name, secrets.token_hex(16))
        if _poll(lambda: handle if self._try_lock(handle, ttl) else None, wait_timeout) is None:
            raise ResourceBusy(f"lock {name!r} is held by another worker")
        return handle

    @abstractmethod
    def _try_lock(self, handle: LockHandle, ttl: float) -> bool:
        """Take the lock for ``handle`` if it is free (or expired); True if taken."""

    @abstractmethod
    def release_lock(self, handle: LockHandle) -> bool:
        """Release the lock if ``handle`` still holds it; False (and no effect) otherwise."""

    @contextmanager
    def lock(self, name: str, ttl: float, wait_timeout: float) -> Iterator[LockHandle]:
        """``with coord.lock(name, ttl, wait_timeout):`` mutual exclusion across workers.

        The lock expires after ``ttl`` even if the holder dies, so ``ttl`` must
        exceed the longest time the block can take.
        """
        handle = self.acquire_lock(name, ttl, wait_timeout)
        try:
            yield handle
        finally:
            self._release_quietly(handle)

    def _release_quietly(self, handle: LockHandle) -> None:
        # The guarded work is done: a failed release must not turn it into an
        # error for the caller; the TTL frees the lock.
        try:
            if not self.release_lock(handle):
                log.warning("lock %r expired before its holder released it", handle.name)
        except Exception:
            log.warning("could not release lock %r; it expires by TTL", handle.name, exc_info=True)

    # --- counters ------------------------------------------------------------------

    @abstractmethod
    def incr(self, name: str, amount: int = 1) -> int:
        """Add ``amount`` (may be negative) to counter ``name`` atomically; the new value."""

    @abstractmethod
    def get_counter(self, name: str) -> int:
        """The value of counter ``name``; 0 if it was never incremented."""

    # --- broadcast -------------------------------------------------------------------

    @abstractmethod
    def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every current subscriber of ``channel``, in every worker.

        At-most-once: a subscriber that is disconnected at that moment misses it.
        """

    @abstractmethod
    def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        """Call ``callback(message)`` on a background thread for each message on ``channel``.

        Messages published after this returns are delivered (normally within
        milliseconds). Exceptions from the callback are logged and do not stop
        the subscription.
        """

    # --- health and lifecycle ---------------------------------------------------------

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend is usable; raise CoordinationUnavailable otherwise."""

    @abstractmethod
    def close(self) -> None:
        """Close subscriptions and connections. The instance is unusable afterwards."""


def build_coordination(settings: Settings, clock: Clock | None = None) -> Coordination:
    """The coordination for ``settings``: Redis when ``redis_url`` is set, else in-process.

    ``clock`` drives the in-process implementation's TTLs (tests pass a FakeClock);
    the Redis implementation uses the server's clock.
    """
    # Imported here: the implementations import this module's types.
    if settings.redis_url:
        from trust.coordination.redis_backend import RedisCoordination

        return RedisCoordination(settings.redis_url, settings.redis_prefix)
    from trust.coordination.memory import MemoryCoordination

    return MemoryCoordination(clock)
