"""Rotation under load, and master-key rotation over 10,000 keys that survives SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keystore import Algorithm, KekRing, RewrapProgress
from keystore.kek.local import LocalKek
from keystore.schema import keystore_version
from tests.conftest import scale
from tests.test_keystore import ADMIN, APP, open_env, request
from trust.keys import load_public_key

ROOT = Path(__file__).resolve().parent.parent


def test_rotation_under_load(database_url: str) -> None:
    """8 threads sign without pause while the key is rotated 20 times: nothing fails, and
    every signature made before any rotation verifies after all of them."""
    e = open_env(database_url)
    key_id = e.store.generate(request(), ADMIN).id
    stop = threading.Event()
    made: list[tuple[bytes, bytes, int]] = []
    errors: list[BaseException] = []

    def signer(n: int) -> None:
        i = 0
        while not stop.is_set():
            message = b"thread %d message %d" % (n, i)
            try:
                result = e.store.sign(key_id, message, APP)
            except BaseException as exc:
                errors.append(exc)
                return
            made.append((message, result.signature, result.version))
            i += 1

    threads = [threading.Thread(target=signer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for _ in range(20):
        time.sleep(0.05)
        e.store.rotate(key_id, ADMIN)
    time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    versions = {v for _, _, v in made}
    assert e.store.get(key_id, ADMIN).primary_version == 21
    assert len(versions) > 5, versions  # signing really overlapped the rotations
    publics = {v: load_public_key(e.store.public_key(key_id, v).spki_der) for v in versions}
    for message, signature, version in made:
        publics[version].verify(signature, message)
    for message, signature, version in made[:: max(1, len(made) // 200)]:
        assert e.store.verify(key_id, message, signature, APP).version == version
    e.store.close()
    e.db.dispose()


# --- master-key rotation ------------------------------------------------------------

_WORKER = """
import sys
from keystore import KekRing, KeyStore
from keystore.kek.local import LocalKek
from trust.audit import AuditLog
from trust.clock import SystemClock
from trust.db import Database

url, old, new = sys.argv[1:4]
db = Database(url)
clock = SystemClock()
old_kek = LocalKek(bytes.fromhex(old), source="old")
ring = KekRing(LocalKek(bytes.fromhex(new), source="new"), [old_kek])
store = KeyStore(db, ring, clock=clock, audit=AuditLog(db, clock))
store.rewrap_all(lambda p: print(p.done, p.total, flush=True), batch_size=250)
print("finished", flush=True)
"""


def _under(db_url: str, kek_id: str) -> int:
    from trust.db import Database

    db = Database(db_url)
    with db.session() as s:
        n = s.execute(select(func.count()).where(keystore_version.c.kek_id == kek_id)).scalar_one()
    db.dispose()
    return int(n)


@pytest.mark.slow
def test_master_key_rotation_10k_survives_sigkill(database_url: str) -> None:
    count = scale(10_000, 2_000) if database_url.startswith("sqlite") else scale(3_000, 1_000)
    old_key, new_key = os.urandom(16), os.urandom(16)
    old = LocalKek(old_key, source="old")
    new = LocalKek(new_key, source="new")
    e = open_env(database_url, kek=old)
    ids = e.store.generate_many(request(Algorithm.SM2), count, ADMIN)
    publics = {k: e.store.public_key(k).spki_der for k in ids[:50]}
    e.store.close()
    e.db.dispose()

    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, database_url, old_key.hex(), new_key.hex()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        done, total = (int(x) for x in line.split())
        assert total == count
        seen = done
        if done >= count // 4:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _under(database_url, new.kek_id)
    assert seen <= partial < count  # killed half-way: some done, not all

    e = open_env(database_url, kek=KekRing(new, [old]))
    reports: list[RewrapProgress] = []
    rewrapped = e.store.rewrap_all(reports.append)
    assert rewrapped == count - partial
    assert reports[0] == RewrapProgress(0, count - partial)
    assert reports[-1] == RewrapProgress(count - partial, count - partial)
    assert _under(database_url, new.kek_id) == count
    assert e.store.rewrap_all() == 0  # idempotent: nothing left
    e.store.close()
    e.db.dispose()

    # The old master key is gone now; every key still signs, public keys unchanged.
    e = open_env(database_url, kek=new)
    # Threads, so that concurrent signers share audit commits (group commit).
    with ThreadPoolExecutor(8) as pool:
        signed = list(pool.map(lambda k: e.store.sign(k, b"after", APP).key_id, ids))
    assert signed == ids
    for key_id, spki in publics.items():
        assert e.store.public_key(key_id).spki_der == spki
    e.store.close()
    e.db.dispose()
