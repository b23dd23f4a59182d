"""Detached SM2 CMS signing over HTTP, and CMS verification in process, each against the
raw SM2 rate measured in the same run.

    .venv/bin/python scripts/bench/signing.py [--seconds 3] [--rounds 2]
                                              [--clients 4] [--batch 50]

Starts ``trustctl serve`` (1 worker, SQLite, default settings except the rate limit, in a
fresh temporary var dir, after ``trustctl init`` made the default CAs), creates an SM2
key and a signer certified by the default SM2 issuing CA, and a ``signer`` token
narrowed to that signer. Figures are operations per second of wall time, best ratio of
--rounds; each round measures its raw reference right before:

- sign raw: ``get_backend("openssl")`` private handle ``sign`` of a 32-byte message,
  one thread, in this process;
- cms: ``POST /v1/signers/{id}/cms`` ``{data_b64, detached: true}``, one SignedData per
  request, keep-alive, one client, then --clients clients (``scripts.bench.load``: raw
  sockets, one process per client, so the figure is the server's, not a Python client's);
- cms:batch: ``POST /v1/signers/{id}/cms:batch`` with --batch items a request, one client;
- verify raw: the public handle's ``verify`` of that message, one thread;
- verify cms: ``trust.validation.verify_cms`` in this process (not over HTTP) on one of
  the SignedData made above, with the detached content, the service's SM2 root as the
  anchor and its issuing CA as intermediate, both parsed once (the "cached chain"):
  message digest, SM2 signature, ESS attribute and the path (pyhanko-certvalidator,
  soft-fail revocation, no CRL/OCSP fetched) every time.

Targets: cms >= 0.4x sign raw; verify cms >= 0.3x verify raw. The client runs on the
same host as the server and takes CPU from it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.keystore_http import (  # noqa: E402
    _trustctl,
    bench_env,
    rate,
    running_server,
)
from scripts.bench.load import http_rate  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402

MESSAGE = b"k" * 32
CONTENT = b"contract text " * 64  # ~900 bytes, a small document
TARGETS = {"cms": 0.4, "verify": 0.3}


@contextmanager
def served(var: Path) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """A fresh server: (base url, signer token, signer id, {root, issuing} PEM)."""
    env = bench_env(var)
    _trustctl(env, "init")
    cas = json.loads(_trustctl(env, "ca", "list", "--json"))["cas"]
    issuing = next(c for c in cas if c["algorithm"] == "sm2" and c["parent_id"])
    root = next(c for c in cas if c["id"] == issuing["parent_id"])
    key_id = json.loads(
        _trustctl(env, "keys", "create", "--algorithm", "SM2", "--label", "bench", "--json")
    )["id"]
    signer = json.loads(
        _trustctl(
            env,
            "signers",
            "create",
            "--key",
            key_id,
            "--label",
            "bench",
            "--ca",
            issuing["id"],
            "--subject",
            "CN=bench",
            "--json",
        )
    )["id"]
    token = _trustctl(
        env,
        "tokens",
        "create",
        "--role",
        "signer",
        "--resource",
        signer,
        "--resource-type",
        "signer",
    ).strip()
    pems = {"root": root["certificate_pem"], "issuing": issuing["certificate_pem"]}
    with running_server(var, env) as base:
        yield base, token, signer, pems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    from ca.certs import load_certificate
    from trust.validation import verify_cms

    handle = get_backend("openssl").generate()
    public = handle.public_handle()
    raw_signature = handle.sign(MESSAGE)
    data = base64.b64encode(CONTENT).decode()
    single = json.dumps({"data_b64": data, "detached": True}).encode()
    batch = json.dumps({"items": [{"data_b64": data}] * args.batch, "detached": True}).encode()

    with (
        tempfile.TemporaryDirectory() as tmp,
        served(Path(tmp) / "var") as (
            base,
            token,
            signer,
            pems,
        ),
    ):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(path: str, body: bytes, count: int, clients: int) -> Callable[[], float]:
            def measure() -> float:
                return http_rate(
                    base,
                    path,
                    body,
                    headers=headers,
                    seconds=args.seconds,
                    clients=clients,
                    per_request=count,
                )

            return measure

        sample = httpx.post(f"{base}/v1/signers/{signer}/cms", content=single, headers=headers)
        cms_der = base64.b64decode(sample.json()["cms_b64"])
        anchors = [load_certificate(pems["root"].encode())]
        intermediates = [load_certificate(pems["issuing"].encode())]
        report = verify_cms(cms_der, CONTENT, anchors=anchors, intermediates=intermediates)
        if report.indication.value != "TOTAL_PASSED":
            raise SystemExit(f"the sample does not verify: {report}")

        def verify_op() -> int:
            verify_cms(cms_der, CONTENT, anchors=anchors, intermediates=intermediates)
            return 1

        def in_process(op: Callable[[], int]) -> Callable[[], float]:
            return lambda: rate(op, args.seconds)

        def raw_sign() -> int:
            handle.sign(MESSAGE)
            return 1

        def raw_verify() -> int:
            public.verify(MESSAGE, raw_signature)
            return 1

        cms_path = f"/v1/signers/{signer}/cms"
        runs: dict[str, tuple[Callable[[], float], str]] = {
            "cms, 1 client": (post(cms_path, single, 1, 1), "cms"),
            f"cms, {args.clients} clients": (post(cms_path, single, 1, args.clients), "cms"),
            f"cms:batch x{args.batch}, 1 client": (
                post(f"{cms_path}:batch", batch, args.batch, 1),
                "cms",
            ),
            "verify cms, in process": (in_process(verify_op), "verify"),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, (measure, kind) in runs.items():
                raw = rate(raw_sign if kind == "cms" else raw_verify, args.seconds)
                measured = measure()
                if name not in best or measured / raw > best[name][1] / best[name][0]:
                    best[name] = (raw, measured)

    print(f"1 worker, SQLite; {args.rounds} rounds of {args.seconds:.1f} s; operations/s")
    print(f"{'':30}{'raw':>8}{'this':>8}{'ratio':>8}{'target':>8}")
    for name, (raw, measured) in best.items():
        target = TARGETS[runs[name][1]]
        verdict = "ok" if measured / raw >= target else "MISSED"
        print(f"{name:30}{raw:>8.0f}{measured:>8.0f}{measured / raw:>8.2f}{target:>7.2f} {verdict}")


if __name__ == "__main__":
    main()
