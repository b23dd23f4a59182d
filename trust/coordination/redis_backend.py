"""Redis coordination: shared by every worker process and host of a deployment.

Each operation is one Redis command or one Lua script on a single key, so it is
atomic without MULTI and works on Redis Cluster too. Keys live under the
configured prefix, with client-supplied parts percent-encoded so that, for
example, scope ``"a:b"`` with key ``"c"`` never meets scope ``"a"`` with key
``"b:c"``. Time-based decisions (rate limits) use the Redis server's clock
(``TIME``) so that workers with skewed clocks still agree.

Redis down: connect and socket timeouts are short and the client never retries
(a retried ``INCRBY`` or script after a timeout could apply twice), so a dead or
unreachable Redis fails within about a second, and every operation raises
:class:`~trust.errors.CoordinationUnavailable` (the API answers 503: fail
closed) instead of a driver exception. Every record a request writes (idempotency
claims, locks, rate-limit state, nonces) carries a TTL, so a worker that dies
half-way leaves nothing behind for longer than that TTL. A subscription's
background thread survives an outage: it reconnects and resubscribes, but the
messages published meanwhile are lost.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from trust.coordination import (
    Coordination,
    IdempotencyClaim,
    IdempotencyState,
    LockHandle,
    RateDecision,
    StoredResponse,
    Subscription,
)
from trust.errors import CoordinationUnavailable, IdempotencyConflict

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 1.0
# How often a subscription's thread checks whether it was closed, and how long
# it waits before reconnecting after an error.
_LISTEN_POLL = 0.2
_RECONNECT_DELAY = 0.5

# GCRA on one key holding the theoretical arrival time (TAT, ms since the epoch).
# Replies carry durations as strings: Lua numbers would be truncated to integers.
_HIT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local epsilon = 0.001
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at - now > epsilon then
  return {0, 0, tostring(tat - now), tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', math.ceil(new_tat - now))
local remaining = math.floor((now + window - new_tat + epsilon) / interval)
return {1, remaining, tostring(new_tat - now), '0'}
"""

# An idempotency record is a hash: fp, ttl (ms to keep the response), then either
# token (in progress, expires after claim_ttl) or status/headers/body (done).
_BEGIN = """
local rec = redis.call('HMGET', KEYS[1], 'fp', 'status', 'headers', 'body')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[2], 'token', ARGV[1], 'ttl', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
if rec[1] ~= ARGV[2] then return {'mismatch'} end
if not rec[2] then return {'pending'} end
return {'done', rec[2], rec[3], rec[4]}
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
local ttl = redis.call('HGET', KEYS[1], 'ttl')
redis.call('HDEL', KEYS[1], 'token')
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

_ABANDON = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Compare-and-delete: never release a lock that expired and was taken by another holder.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


@contextmanager
def _translated() -> Iterator[None]:
    """Turn any driver error into CoordinationUnavailable (the detail is shown to
    clients, so the host and cause stay in the chained exception, for the logs)."""
    try:
        yield
    except RedisError as exc:
        raise CoordinationUnavailable("coordination backend unavailable") from exc


class RedisCoordination(Coordination):
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self._prefix = prefix
        self._socket_timeout = socket_timeout
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._hit_script = self._client.register_script(_HIT)
        self._begin_script = self._client.register_script(_BEGIN)
        self._complete_script = self._client.register_script(_COMPLETE)
        self._abandon_script = self._client.register_script(_ABANDON)
        self._unlock_script = self._client.register_script(_UNLOCK)
        self._subscriptions: set[_RedisSubscription] = set()
        self._subscriptions_lock = threading.Lock()

    def _key(self, kind: str, *parts: str) -> str:
        return self._prefix + kind + "".join(":" + quote(part, safe="") for part in parts)

    # --- rate limiting ---------------------------------------------------------

    def _hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        with _translated():
            allowed, remaining, reset_ms, retry_ms = self._hit_script(
                keys=[self._key("rate", key)], args=[limit, window_seconds * 1000]
            )
        return RateDecision(
            bool(allowed), int(remaining), float(reset_ms) / 1000, float(retry_ms) / 1000
        )

    # --- replay / nonce cache -------------------------------------------------

    def _remember_once(self, namespace: str, value: str, ttl: float) -> bool:
        with _translated():
            first = self._client.set(self._key("nonce", namespace, value), 1, nx=True, px=_ms(ttl))
        return bool(first)

    # --- idempotency keys ------------------------------------------------------

    def _begin_once(
        self, scope: str, key: str, fingerprint: str, ttl: float, claim_ttl: float
    ) -> IdempotencyState | None:
        token = secrets.token_hex(16)
        with _translated():
            reply = self._begin_script(
                keys=[self._key("idem", scope, key)],
                args=[token, fingerprint, _ms(claim_ttl), _ms(ttl)],
            )
        outcome = reply[0]
        if outcome == b"claimed":
            return IdempotencyState(claim=IdempotencyClaim(scope, key, token))
        if outcome == b"mismatch":
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different request",
                reason="fingerprint_mismatch",
            )
        if outcome == b"pending":
            return None
        status, headers, body = reply[1:]
        pairs = tuple((name, value) for name, value in json.loads(headers))
        return IdempotencyState(response=StoredResponse(int(status), pairs, bytes(body)))

    def complete(self, claim: IdempotencyClaim, response: StoredResponse) -> bool:
        headers = json.dumps([list(pair) for pair in response.headers])
        with _translated():
            stored = self._complete_script(
                keys=[self._key("idem", claim.scope, claim.key)],
                args=[claim.token, response.status, headers, response.body],
            )
        return bool(stored)

    def abandon(self, claim: IdempotencyClaim) -> None:
        with _translated():
            self._abandon_script(
                keys=[self._key("idem", claim.scope, claim.key)], args=[claim.token]
            )

    # --- locks -------------------------------------------------------------------

    def _try_lock(self, handle: LockHandle, ttl: float) -> bool:
        with _translated():
            taken = self._client.set(
                self._key("lock", handle.name), handle.token, nx=True, px=_ms(ttl)
            )
        return bool(taken)

    def release_lock(self, handle: LockHandle) -> bool:
        with _translated():
            released = self._unlock_script(
                keys=[self._key("lock", handle.name)], args=[handle.token]
            )
        return bool(released)

    # --- counters ------------------------------------------------------------------

    def incr(self, name: str, amount: int = 1) -> int:
        with _translated():
            return int(self._client.incrby(self._key("counter", name), amount))

    def get_counter(self, name: str) -> int:
        with _translated():
            value = self._client.get(self._key("counter", name))
        return int(value) if value is not None else 0

    # --- broadcast -------------------------------------------------------------------

    def publish(self, channel: str, message: str) -> None:
        with _translated():
            self._client.publish(self._key("channel", channel), message.encode())

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        subscription = _RedisSubscription(
            self._client,
            self._key("channel", channel),
            callback,
            self._forget,
            self._socket_timeout,
        )
        with self._subscriptions_lock:
            self._subscriptions.add(subscription)
        return subscription

    def _forget(self, subscription: _RedisSubscription) -> None:
        with self._subscriptions_lock:
            self._subscriptions.discard(subscription)

    # --- health and lifecycle ---------------------------------------------------------

    def ping(self) -> None:
        with _translated():
            self._client.ping()

    def close(self) -> None:
        with self._subscriptions_lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()
        self._client.close()


class _RedisSubscription(Subscription):
    """One pub/sub connection and one thread per subscription."""

    def __init__(
        self,
        client: redis.Redis,
        channel_key: str,
        callback: Callable[[str], None],
        on_close: Callable[[_RedisSubscription], None],
        confirm_timeout: float,
    ) -> None:
        self._channel_key = channel_key
        self._callback = callback
        self._on_close = on_close
        self._stop = threading.Event()
        self._pubsub = client.pubsub()
        try:
            with _translated():
                self._pubsub.subscribe(channel_key)
                # Wait for the server's confirmation: only then is a message
                # published by another connection sure to reach us.
                confirmation = self._pubsub.get_message(timeout=confirm_timeout)
            if confirmation is None or confirmation["type"] != "subscribe":
                raise CoordinationUnavailable("coordination backend unavailable")
        except CoordinationUnavailable:
            self._pubsub.close()
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"coordination-sub-{channel_key}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    message = self._pubsub.get_message(timeout=_LISTEN_POLL)
                except RedisError:
                    # The next get_message reconnects and resubscribes.
                    log.warning("subscription %r lost its connection", self._channel_key)
                    self._stop.wait(_RECONNECT_DELAY)
                    continue
                if message is None or message["type"] != "message" or self._stop.is_set():
                    continue
                try:
                    self._callback(message["data"].decode())
                except Exception:
                    log.exception("subscriber of %r failed", self._channel_key)
        finally:
            self._pubsub.close()

    def close(self) -> None:
        self._on_close(self)
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
