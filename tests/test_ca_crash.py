"""SIGKILL of a real server during issuance: every certificate a client received has its
issued row with the same DER; what was in flight is at most a reserved serial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ca.certs import load_certificate
from ca.schema import ca_certificate
from scripts.bench.ca import sm2_csr_pem
from tests.tsa_support import _free_port, _ready, server_env, trustctl
from trust.db import Database


@pytest.mark.slow
def test_sigkill_during_issuance_leaves_no_certificate_without_its_record(
    tmp_path: Path,
) -> None:
    var = tmp_path / "var"
    env = server_env(var)
    trustctl(env, "init")
    token = trustctl(env, "tokens", "create", "--role", "ca_operator").strip()
    cas = json.loads(trustctl(env, "ca", "list", "--json"))["cas"]
    issuing = next(c for c in cas if c["algorithm"] == "sm2" and c["parent_id"])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    exe = str(Path(sys.executable).with_name("trustctl"))
    with (var / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [exe, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while not _ready(base):
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            received: list[dict[str, str]] = []
            failures: list[str] = []
            stop = threading.Event()
            body = {"csr_pem": sm2_csr_pem(), "profile": "person"}

            def issue() -> None:
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                    while not stop.is_set():
                        try:
                            r = client.post(f"/v1/cas/{issuing['id']}/certificates", json=body)
                        except httpx.TransportError as exc:
                            failures.append(type(exc).__name__)
                            return
                        assert r.status_code == 201, r.text
                        received.append(r.json())

            clients = [threading.Thread(target=issue) for _ in range(4)]
            for c in clients:
                c.start()
            while len(received) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(server.pid, signal.SIGKILL)  # mid-request: 4 clients keep it busy
            server.wait(timeout=30)
            stop.set()
            for c in clients:
                c.join(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()

    assert len(received) >= 20 and failures  # the kill cut requests off
    db = Database(f"sqlite:///{var / 'trust.db'}")
    try:
        with db.session() as s:
            rows = {
                r.serial: r
                for r in s.execute(
                    select(ca_certificate.c.serial, ca_certificate.c.state, ca_certificate.c.der)
                )
            }
    finally:
        db.dispose()
    for answer in received:
        row = rows[answer["serial_hex"]]
        assert row.state == "issued"
        assert load_certificate(answer["certificate_pem"].encode()).dump() == row.der
