"""RFC 3161 time-stamping over HTTP against the raw SM2 backend, measured in the same run.

    .venv/bin/python scripts/bench/tsa.py [--seconds 3] [--rounds 3] [--clients 8]

Starts ``trustctl init`` + ``trustctl serve`` (1 worker, SQLite, default settings except
the rate limit; ``served`` from ``keystore_http``) and measures, in tokens per second of
wall time (best of --rounds; each round measures the raw reference right before the HTTP
figure):

- raw: ``get_backend("openssl")`` private handle ``sign`` loop of a 32-byte message, one
  thread, in this process (one SM2 signature is the TSA's only signature per token);
- in-process: ``TimestampAuthority.respond`` of the same store called directly in this
  process (key store signature, audit, token log; no HTTP), to show what HTTP adds;
- tsa: ``POST /tsa`` with an SM3 TimeStampReq (nonce, certReq) to the default SM2 unit,
  keep-alive (``load.http_rate``: raw-socket client processes, so the figure is the
  server's and not a Python HTTP client's), one client, then --clients concurrent
  clients. Every token is signed through the key store and recorded in the token log
  before it is sent; the first answer is checked to be a granted token.

Targets: tsa >= 0.4x raw, in-process >= 0.7x raw. The clients run on the same host as
the server and take CPU from it, as they would behind a local proxy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
from asn1crypto import algos, tsp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.deps import build_services  # noqa: E402
from scripts.bench.keystore_http import MESSAGE, rate, served  # noqa: E402
from scripts.bench.load import http_rate  # noqa: E402
from trust.cms.algorithms import DIGEST_OIDS, digest  # noqa: E402
from trust.keys import configure_sm2_backend  # noqa: E402
from trust.settings import Settings  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402

TARGETS = {"in-process": 0.7, "tsa": 0.4}
QUERY = {"Content-Type": "application/timestamp-query"}
# TimeStampResp starts SEQUENCE { PKIStatusInfo SEQUENCE { INTEGER 0 (granted) } ...
GRANTED = b"\x30\x03\x02\x01\x00"


def time_stamp_request() -> bytes:
    return tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": DIGEST_OIDS["sm3"]}),
                "hashed_message": digest("sm3", b"bench"),
            },
            "nonce": 0x1234567890ABCDEF,
            "cert_req": True,
        }
    ).dump()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    handle = get_backend("openssl").generate()
    body = time_stamp_request()

    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp) / "var") as (base, _, _):
        first = httpx.post(f"{base}/tsa", content=body, headers=QUERY)
        if first.status_code != 200 or GRANTED not in first.content[:16]:
            raise SystemExit(f"/tsa: {first.status_code} {first.content[:200]!r}")

        def stamp(clients: int) -> float:
            return http_rate(
                base, "/tsa", body, headers=QUERY, seconds=args.seconds, clients=clients
            )

        settings = Settings(var_dir=Path(tmp) / "var")
        configure_sm2_backend(settings.sm2_backend, settings.libcrypto_path)
        authority = build_services(settings).tsa()

        def respond() -> int:
            if GRANTED not in authority.respond(body)[:16]:
                raise SystemExit("in-process: not granted")
            return 1

        runs: dict[str, Callable[[], float]] = {
            "in-process": lambda: rate(respond, args.seconds),
            "tsa, 1 client": lambda: stamp(1),
            f"tsa, {args.clients} clients": lambda: stamp(args.clients),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, measure in runs.items():
                raw = rate(lambda: (handle.sign(MESSAGE), 1)[1], args.seconds)
                tokens = measure()
                if name not in best or tokens / raw > best[name][1] / best[name][0]:
                    best[name] = (raw, tokens)

    print(f"1 worker, SQLite, SM2 unit; {args.rounds} rounds of {args.seconds:.1f} s; tokens/s")
    print(f"{'':20}{'raw':>8}{'tokens':>8}{'ratio':>8}{'target':>8}")
    for name, (raw, tokens) in best.items():
        target = TARGETS[name.split(",")[0]]
        verdict = "ok" if tokens / raw >= target else "MISSED"
        print(f"{name:20}{raw:>8.0f}{tokens:>8.0f}{tokens / raw:>8.2f}{target:>7.2f} {verdict}")


if __name__ == "__main__":
    main()
