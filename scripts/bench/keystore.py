"""Key store signing throughput against the raw SM2 backend, measured in the same run.

    .venv/bin/python scripts/bench/keystore.py [--seconds 2] [--rounds 2] [--threads 8]
                                               [--database-url URL]

Figures (signatures per second of wall time; raw and keystore signing alternate in
0.25 s slices for --rounds x --seconds each, and the ratio is the median of the
keystore/raw ratios of the slice pairs, so background load hits both alike):

- raw: ``SM2PrivateKey.sign`` of a 32-byte message, the backend with nothing around it;
- keystore, no audit: ``KeyStore.sign`` with a warm cache and an audit sink that
  drops records: the hot path's own cost (cache lookup, permission and state
  checks, SM3 of the message for the record);
- keystore, durable: the real ``AuditLog`` in the database, every signature
  durable in the log before ``sign`` returns (the default ``keystore_audit_mode``);
- keystore, write-behind: the real ``AuditLog``, opt-in ``write_behind`` mode:
  ``sign`` returns at once and the records are committed every 50 ms (a crash
  loses the audit records of that last interval).

Each is run with one thread and with --threads threads (the commit overlaps the
signing on one thread when a second core is free; group commit needs concurrent
signers). Ratios are keystore / raw. On a loaded machine the slices are noise:
run it at real-time priority (``chrt -f 10``, briefly) or on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
# The machine is shared: alternating short slices of raw and keystore signing puts both
# under the same background load, where one long run each would not.
SLICE = 0.25
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
    parser.add_argument(
        "--modes", default="no audit,durable,write-behind", help="comma-separated rows to run"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")

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

    print(
        f"database: {db.dialect}; {args.rounds} x {args.seconds:.1f} s of alternating "
        f"{SLICE} s slices (raw, keystore); signs/s; ratio = median of the slice pairs"
    )
    print(f"{'':24}{'threads':>8}{'raw':>10}{'keystore':>10}{'ratio':>8}")
    for threads in (1, args.threads):
        for name, store in stores.items():
            if name not in modes:
                continue
            raws: list[float] = []
            kss: list[float] = []
            for _ in range(round(args.rounds * args.seconds / SLICE)):
                raws.append(rate(lambda: raw.sign(MESSAGE), SLICE, threads))
                kss.append(rate(lambda s=store: s.sign(key_id, MESSAGE, USER), SLICE, threads))
            ratio = statistics.median(k / r for k, r in zip(kss, raws, strict=True))
            print(
                f"keystore, {name:<14}{threads:>8}{statistics.median(raws):>10.0f}"
                f"{statistics.median(kss):>10.0f}{ratio:>8.2f}"
            )
    for store in stores.values():
        store.close()
    db.dispose()


if __name__ == "__main__":
    main()
