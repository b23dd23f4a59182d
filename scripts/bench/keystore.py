"""Key store signing throughput against the raw SM2 backend, measured in the same run.

    .venv/bin/python scripts/bench/keystore.py [--seconds 2] [--rounds 2] [--threads 8]
                                               [--database-url URL]

Figures (signatures per second of wall time, best of --rounds, each keystore
round right after its raw reference round):

- raw: ``SM2PrivateKey.sign`` of a 32-byte message, the backend with nothing around it;
- keystore, no audit: ``KeyStore.sign`` with a warm cache and an audit sink that
  drops records: the hot path's own cost (cache lookup, permission and state
  checks, SM3 of the message for the record);
- keystore, durable: the real ``AuditLog`` in the database, every signature
  durable in the log before ``sign`` returns (the default ``keystore_audit_mode``);
- keystore, write-behind: the real ``AuditLog``, opt-in ``write_behind`` mode:
  ``sign`` returns at once and the records are committed every 50 ms (a crash
  loses the audit records of that last interval).

Each is run with one thread and with --threads threads (group commit of audit
records only helps when signers are concurrent). Ratios are keystore / raw.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from keystore import Actor, Algorithm, GenerateRequest, KeyStore, Purpose  # noqa: E402
from keystore.kek.local import LocalKek  # noqa: E402
from trust import migrations  # noqa: E402
from trust.audit import AuditLog  # noqa: E402
from trust.clock import SystemClock  # noqa: E402
from trust.db import Database  # noqa: E402
from trust.keys import SM2PrivateKey  # noqa: E402

MESSAGE = b"k" * 32
ADMIN = Actor("bench-admin", frozenset({"key_admin"}))
USER = Actor("bench-user")


class NullAudit:
    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> object:
        return None


def rate(sign: Callable[[], object], seconds: float, threads: int) -> float:
    """Signatures per second with ``threads`` threads calling ``sign`` for ``seconds``."""
    counts = [0] * threads
    stop = threading.Event()

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            sign()
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    db = Database(url)
    migrations.upgrade(db)
    clock = SystemClock()
    kek = LocalKek(os.urandom(16), source="bench")
    request = GenerateRequest("bench", Algorithm.SM2, Purpose.SIGN, owner=USER.id)
    stores = {
        "no audit": KeyStore(db, kek, clock=clock, audit=NullAudit()),
        "durable": KeyStore(db, kek, clock=clock, audit=AuditLog(db, clock)),
        "write-behind": KeyStore(
            db, kek, clock=clock, audit=AuditLog(db, clock), audit_mode="write_behind"
        ),
    }
    key_id = stores["durable"].generate(request, ADMIN).id
    raw = SM2PrivateKey.generate()
    for store in stores.values():
        store.sign(key_id, MESSAGE, USER)  # warm the cache: unwrap once

    print(f"database: {db.dialect}; {args.rounds} rounds of {args.seconds:.1f} s; signs/s")
    print(f"{'':22}{'threads':>8}{'raw':>10}{'keystore':>10}{'ratio':>8}")
    for threads in (1, args.threads):
        for name, store in stores.items():
            best_raw = best_ks = 0.0
            for _ in range(args.rounds):
                best_raw = max(best_raw, rate(lambda: raw.sign(MESSAGE), args.seconds, threads))
                ks = rate(lambda s=store: s.sign(key_id, MESSAGE, USER), args.seconds, threads)
                best_ks = max(best_ks, ks)
            print(
                f"keystore, {name:<12}{threads:>8}{best_raw:>10.0f}{best_ks:>10.0f}"
                f"{best_ks / best_raw:>8.2f}"
            )
    for store in stores.values():
        store.close()
    db.dispose()


if __name__ == "__main__":
    main()
