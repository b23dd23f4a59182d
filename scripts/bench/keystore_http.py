"""SM2 signing over HTTP against the raw SM2 backend, measured in the same run.

    .venv/bin/python scripts/bench/keystore_http.py [--seconds 3] [--rounds 3]
                                                    [--clients 8] [--batch 100]
                                                    [--audit-mode durable|write_behind]

Starts ``trustctl serve`` (1 worker, SQLite, default settings except the rate
limit, in a fresh temporary var dir) as a subprocess and measures, in signatures
per second of wall time (best of --rounds; each round measures the raw reference
right before the HTTP figures):

- raw: ``get_backend("openssl")`` private handle ``sign`` loop of a 32-byte message,
  one thread, in this process;
- sign: ``POST /v1/keys/{id}/sign``, one signature per request, keep-alive
  (``scripts/bench/load.py``: a raw-socket client per process), one client, then
  --clients concurrent clients;
- sign:batch: ``POST /v1/keys/{id}/sign:batch`` with --batch items a request, one client.

Targets: sign >= 0.5x raw, sign:batch >= 0.75x raw. The client runs on the same
host as the server and takes CPU from it, as it would behind a local proxy.
``--audit-mode`` sets the server's ``keystore_audit_mode`` (default durable: every
signature's audit record is committed before the answer); the header says which.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.load import http_rate  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402

MESSAGE = b"k" * 32
TARGETS = {"sign": 0.5, "sign:batch": 0.75}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trustctl(env: dict[str, str], *args: str) -> str:
    exe = str(Path(sys.executable).with_name("trustctl"))
    done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def bench_env(var: Path, audit_mode: str = "durable") -> dict[str, str]:
    """The environment of a fresh store under ``var`` for ``trustctl`` and the server."""
    env = {
        **os.environ,
        "TRUST_VAR_DIR": str(var),
        "TRUST_KEYSTORE_AUDIT_MODE": audit_mode,
        "TRUST_LOG_LEVEL": "WARNING",
        # The default (600 a minute per client) would measure the rate limiter.
        "TRUST_RATE_LIMIT_REQUESTS": str(10**9),
    }
    for name in ("TRUST_DATABASE_URL", "TRUST_REDIS_URL", "TRUST_MASTER_KEY", "TRUST_CONFIG"):
        env.pop(name, None)
    return env


@contextmanager
def running_server(var: Path, env: dict[str, str]) -> Iterator[str]:
    """``trustctl serve`` (1 worker) on a free port until ready: its base url."""
    port = _free_port()
    log = (var / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("trustctl")), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((var / "serve.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()


@contextmanager
def served(var: Path, audit_mode: str = "durable") -> Iterator[tuple[str, str, str]]:
    """A fresh server: (base url, signer token, SM2 key id)."""
    env = bench_env(var, audit_mode)
    _trustctl(env, "init")
    key_id = json.loads(
        _trustctl(env, "keys", "create", "--algorithm", "SM2", "--label", "bench", "--json")
    )["id"]
    token = _trustctl(env, "tokens", "create", "--role", "signer", "--resource", key_id).strip()
    with running_server(var, env) as base:
        yield base, token, key_id


def thread_clients(base: str, headers: dict[str, str]) -> Callable[[], httpx.Client]:
    """A client per calling thread: one keep-alive connection each, as one client process
    would hold."""
    local = threading.local()

    def client() -> httpx.Client:
        c: httpx.Client | None = getattr(local, "client", None)
        if c is None:
            c = local.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        return c

    return client


def rate(op: Callable[[], int], seconds: float, threads: int = 1) -> float:
    """Signatures per second with ``threads`` threads calling ``op`` (which returns how
    many signatures it made) for ``seconds``."""
    op()  # warm-up: connection, key cache, per-thread contexts
    counts = [0] * threads
    stop = threading.Event()

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += op()
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
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--audit-mode", choices=("durable", "write_behind"), default="durable")
    args = parser.parse_args()

    handle = get_backend("openssl").generate()
    data = base64.b64encode(MESSAGE).decode()
    single = json.dumps({"data_b64": data}).encode()
    batch = json.dumps({"items": [{"data_b64": data}] * args.batch}).encode()

    with (
        tempfile.TemporaryDirectory() as tmp,
        served(Path(tmp) / "var", args.audit_mode) as (
            base,
            token,
            key_id,
        ),
    ):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        runs = {
            "sign, 1 client": (f"/v1/keys/{key_id}/sign", single, 1, 1, "sign"),
            f"sign, {args.clients} clients": (
                f"/v1/keys/{key_id}/sign",
                single,
                1,
                args.clients,
                "sign",
            ),
            f"sign:batch x{args.batch}, 1 client": (
                f"/v1/keys/{key_id}/sign:batch",
                batch,
                args.batch,
                1,
                "sign:batch",
            ),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, (path, body, per_request, clients, _target) in runs.items():
                raw = rate(lambda: (handle.sign(MESSAGE), 1)[1], args.seconds)
                http = http_rate(
                    base,
                    path,
                    body,
                    headers=headers,
                    seconds=args.seconds,
                    clients=clients,
                    per_request=per_request,
                )
                if name not in best or http / raw > best[name][1] / best[name][0]:
                    best[name] = (raw, http)

    print(
        f"1 worker, SQLite, audit {args.audit_mode}; "
        f"{args.rounds} rounds of {args.seconds:.1f} s; signatures/s"
    )
    print(f"{'':30}{'raw':>8}{'http':>8}{'ratio':>8}{'target':>8}")
    for name, (raw, http) in best.items():
        target = TARGETS[runs[name][4]]
        verdict = "ok" if http / raw >= target else "MISSED"
        print(f"{name:30}{raw:>8.0f}{http:>8.0f}{http / raw:>8.2f}{target:>7.2f} {verdict}")


if __name__ == "__main__":
    main()
