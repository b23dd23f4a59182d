"""Seal stamping over HTTP and stamp verification, each against the raw SM2 rate measured
in the same run.

    .venv/bin/python scripts/bench/seals.py [--seconds 2] [--rounds 2] [--clients 4]

Starts ``trustctl serve`` (1 worker, SQLite, default settings except the rate limit, in a
fresh temporary var dir, after ``trustctl init``) through ``keystore_http.served``; binds
its SM2 key as a signer certified by the default SM2 issuing CA (profile seal_signer);
applies for a seal listing that signer (as one user), approves and makes it (as another),
and creates a ``signer`` token narrowed to the seal. Figures are operations per second of
wall time, best ratio of --rounds; each round measures its raw reference right before:

- sign raw: ``get_backend("openssl")`` private handle ``sign`` of a 32-byte message, one
  thread, in this process;
- stamp: ``POST /v1/seals/{esid}/stamp`` ``{signer, sm3_b64, property_info}`` (no
  timestamp), one SES_Signature per request, from ``load.http_rate`` (raw-socket
  keep-alive clients, one process each), one client, then --clients;
- verify raw: the public handle's ``verify`` of that message, one thread;
- verify stamp: ``SealVerifier.verify_signature`` in this process (the service's own
  ``Services.seal_verifier()`` over the same database) on a stamp made above with its
  SM3: signer and maker signatures, signer in the seal, both certificate paths (cached
  after the first verification), revocation from the CA's records and the registry
  status at the signing time, every time;
- verify stamp http: ``POST /v1/verify/seal-signature``, one ``http_rate`` client (for
  reference).

Targets: stamp (1 client) >= 0.4x sign raw; verify stamp >= 0.25x verify raw. The client
runs on the same host as the server and takes CPU from it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.keystore_http import (  # noqa: E402
    _trustctl,
    bench_env,
    rate,
    served,
    thread_clients,
)
from scripts.bench.load import http_rate  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402
from trust.sm3 import sm3  # noqa: E402

MESSAGE = b"k" * 32
DIGEST = sm3(b"licence " * 128)
TARGETS = {"stamp": 0.4, "verify": 0.25}
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)


def _env(var: Path, user: str) -> dict[str, str]:
    """The environment ``served`` runs trustctl in, as ``user`` (getpass reads LOGNAME)."""
    env = bench_env(var)
    env["LOGNAME"] = env["USER"] = user
    return env


def prepare(var: Path, key_id: str) -> tuple[str, str, str]:
    """(signer id, esid, stamping token) for a made seal listing a signer over ``key_id``."""
    officer_a, officer_b = _env(var, "officer-a"), _env(var, "officer-b")
    cas = json.loads(_trustctl(officer_a, "ca", "list", "--json"))["cas"]
    issuing = next(c for c in cas if c["algorithm"] == "sm2" and c["parent_id"])
    signer = json.loads(
        _trustctl(
            officer_a, "signers", "create", "--key", key_id, "--label", "bench",
            "--ca", issuing["id"], "--profile", "seal_signer", "--subject", "CN=bench", "--json",
        )
    )  # fmt: skip
    (var / "signer.pem").write_text(signer["certificate_pem"])
    (var / "seal.png").write_bytes(PNG)
    now = datetime.now(UTC)
    seal = json.loads(
        _trustctl(
            officer_a, "seals", "apply", "--type", "official", "--name", "bench",
            "--organization", "bench", "--image", str(var / "seal.png"),
            "--width", "40", "--height", "40",
            "--valid-from", (now - timedelta(days=1)).isoformat(),
            "--valid-to", (now + timedelta(days=30)).isoformat(),
            "--signer-cert", str(var / "signer.pem"), "--json",
        )
    )  # fmt: skip
    esid = seal["esid"]
    _trustctl(officer_b, "seals", "approve", esid)
    _trustctl(officer_b, "seals", "make", esid)
    token = _trustctl(
        officer_a, "tokens", "create", "--role", "signer", "--resource", esid,
        "--resource-type", "seal",
    ).strip()  # fmt: skip
    return signer["id"], esid, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    handle = get_backend("openssl").generate()
    public = get_backend("openssl").load_public(handle.public_bytes())
    signature = handle.sign(MESSAGE)

    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp) / "var") as (base, _, key_id):
        var = Path(tmp) / "var"
        signer_id, esid, token = prepare(var, key_id)
        body = json.dumps(
            {
                "signer": signer_id,
                "sm3_b64": base64.b64encode(DIGEST).decode(),
                "property_info": "x",
            }
        ).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        client = thread_clients(base, headers)
        made = client().post(f"/v1/seals/{esid}/stamp", content=body).json()["signature_b64"]
        stamped = base64.b64decode(made)
        verifier = _verifier(var)
        first = verifier.verify_signature(stamped, original_sm3=DIGEST)
        if first.indication.value != "passed":
            raise SystemExit(f"the stamp does not verify: {first.checks}")
        check_body = json.dumps(
            {"signature_b64": made, "sm3_b64": base64.b64encode(DIGEST).decode()}
        ).encode()

        r = client().post("/v1/verify/seal-signature", content=check_body)
        if r.status_code != 200 or r.json()["indication"] != "passed":
            raise SystemExit(f"verify: {r.status_code} {r.text}")

        def stamp(clients: int) -> Callable[[], float]:
            path = f"/v1/seals/{esid}/stamp"
            return lambda: http_rate(
                base, path, body, headers=headers, seconds=args.seconds, clients=clients
            )

        def verify_http() -> float:
            path = "/v1/verify/seal-signature"
            return http_rate(base, path, check_body, headers=headers, seconds=args.seconds)

        def verify_local() -> int:
            verifier.verify_signature(stamped, original_sm3=DIGEST)
            return 1

        def raw_sign() -> int:
            handle.sign(MESSAGE)
            return 1

        def raw_verify() -> int:
            public.verify(MESSAGE, signature)
            return 1

        # name: (measurement, raw reference, target)
        runs: dict[str, tuple[Callable[[], float], Callable[[], int], str]] = {
            "stamp, 1 client": (stamp(1), raw_sign, "stamp"),
            f"stamp, {args.clients} clients": (stamp(args.clients), raw_sign, "stamp"),
            "verify stamp": (lambda: rate(verify_local, args.seconds), raw_verify, "verify"),
            "verify stamp http, 1 client": (verify_http, raw_verify, "verify"),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, (measure, reference, _target) in runs.items():
                raw = rate(reference, args.seconds)
                measured = measure()
                if name not in best or measured / raw > best[name][1] / best[name][0]:
                    best[name] = (raw, measured)

    print(f"1 worker, SQLite; {args.rounds} rounds of {args.seconds:.1f} s; operations/s")
    print(f"{'':30}{'raw':>8}{'seal':>8}{'ratio':>8}{'target':>8}")
    for name, (raw, measured) in best.items():
        target = TARGETS[runs[name][2]]
        verdict = "ok" if measured / raw >= target else "MISSED"
        print(f"{name:30}{raw:>8.0f}{measured:>8.0f}{measured / raw:>8.2f}{target:>7.2f} {verdict}")


def _verifier(var: Path):  # type: ignore[no-untyped-def]
    """The service's seal verifier over the server's database (as another API worker)."""
    from api.deps import build_services
    from trust.settings import Settings

    return build_services(Settings(var_dir=var)).seal_verifier()


if __name__ == "__main__":
    main()
