"""A small in-process cache whose entries a coordination broadcast drops in every worker.

The stamping path reads the same seal and the same signer certificate status on every
request; both change rarely and every change is broadcast (seal changes on
``SEAL_CHANNEL`` by the seal service, certificate status changes on the CA's channel),
so a worker drops its entry when the message arrives. ``ttl`` bounds how stale an entry
can be when a broadcast is lost. A generation ticket taken before the database read stops
a load that straddles an invalidation from putting the stale value back.

Without coordination nothing tells this process about changes made by others (another
worker, ``trustctl``), so ``BroadcastCache.of`` then gives no cache at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from trust.coordination import Coordination, Subscription

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SEAL_CHANNEL = "seals:status"
ALL = "*"  # a message that empties the whole cache


class BroadcastCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        *,
        size: int = 1024,
        topic: Callable[[K], str] | None = str,
    ) -> None:
        self._ttl = ttl
        self._size = size
        # The broadcast message that names an entry; None: every message drops them all.
        self._topic = topic
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None

    @classmethod
    def of(
        cls,
        coordination: Coordination | None,
        channel: str,
        ttl: float,
        *,
        size: int = 1024,
        topic: Callable[[K], str] | None = str,
    ) -> BroadcastCache[K, V] | None:
        """A cache dropped by messages on ``channel``; None without coordination or TTL."""
        if coordination is None or ttl <= 0:
            return None
        cache: BroadcastCache[K, V] = cls(ttl, size=size, topic=topic)
        # Kept for the cache's life, which is the process's (services are built once).
        cache._subscription = coordination.subscribe(channel, cache.invalidate)
        return cache

    def ticket(self) -> int:
        """Take before reading the source; pass to ``put``."""
        return self._generation

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)  # a dict read is atomic: no lock on the hot path
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: K, value: V, ticket: int) -> None:
        with self._lock:
            if ticket != self._generation:
                return  # invalidated while the value was read: it may be stale
            self._entries[key] = (time.monotonic() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def invalidate(self, message: str) -> None:
        """Drop the entries ``message`` names (every entry for ``ALL``)."""
        with self._lock:
            self._generation += 1
            if message == ALL or self._topic is None:
                self._entries.clear()
                return
            topic = self._topic
            for key in [k for k in self._entries if topic(k) == message]:
                del self._entries[key]
