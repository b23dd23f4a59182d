"""The in-process cache of key records and their unwrapped private keys.

Entries live ``ttl`` seconds. A change made by any worker is broadcast (the key
id on ``CHANNEL``); every worker drops that entry when the message arrives, so a
rotation, suspension or destruction takes effect everywhere within the broadcast
latency rather than the TTL. A per-key generation counter stops a load that
began before an invalidation from putting the stale record back afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from keystore.model import KeyInfo
from trust.keys import PrivateKey

CHANNEL = "keystore.invalidate"
ALL_KEYS = "*"  # message that empties the whole cache (e.g. after a restore)


@dataclass
class CachedKey:
    info: KeyInfo
    expires: float  # time.monotonic()
    # Unwrapped on first use, per version: PrivateKey objects, or raw SM4 keys.
    secrets: dict[int, PrivateKey | bytes] = field(default_factory=dict)


class KeyCache:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, CachedKey] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0  # bumped by clear(), so loads that straddle it are dropped too
        self._lock = threading.Lock()

    def get(self, key_id: str) -> CachedKey | None:
        # Lock-free read: dict access is atomic, and this is the signing hot path.
        entry = self._entries.get(key_id)
        if entry is None or entry.expires <= time.monotonic():
            return None
        return entry

    def ticket(self, key_id: str) -> tuple[int, int]:
        """Take before reading the database; pass to ``put``."""
        with self._lock:
            return self._epoch, self._generations.get(key_id, 0)

    def put(self, info: KeyInfo, ticket: tuple[int, int]) -> CachedKey:
        entry = CachedKey(info, time.monotonic() + self._ttl)
        with self._lock:
            if ticket == (self._epoch, self._generations.get(info.id, 0)):
                self._entries[info.id] = entry
        return entry

    def invalidate(self, key_id: str) -> None:
        with self._lock:
            if key_id == ALL_KEYS:
                self._epoch += 1
                self._entries.clear()
                self._generations.clear()
                return
            self._generations[key_id] = self._generations.get(key_id, 0) + 1
            self._entries.pop(key_id, None)

    def __len__(self) -> int:
        return len(self._entries)
