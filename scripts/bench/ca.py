"""Certificate issuance and OCSP over HTTP against the raw SM2 sign rate of the same run.

    .venv/bin/python scripts/bench/ca.py [--seconds 3] [--rounds 2] [--clients 4]

Starts ``trustctl serve`` (1 worker, SQLite, default settings except the rate limit, in a
fresh temporary var dir, after ``trustctl init`` made the default CAs) through
``keystore_http.served`` and a ``ca_operator`` token. HTTP figures come from
``load.http_rate`` (one raw keep-alive socket per client process, so the client costs
little). Figures are operations per second of wall time, best ratio of --rounds; each
round measures its raw reference right before:

- raw: ``get_backend("openssl")`` private handle ``sign`` of a 32-byte message, one thread;
- issue: ``POST /v1/cas/{sm2 issuing}/certificates`` with an SM2 PKCS#10 request (proof of
  possession checked each time), profile ``person``; one SM2 certificate signature, the
  serial reserved and completed (two commits) and a ``certificate.issue`` audit record per
  request; one client, then --clients clients;
- ocsp: ``POST /ocsp`` and ``GET /ocsp/{base64}`` without a nonce for one good certificate
  of that CA: the signed response kept for the request (no status read, no signature while
  no status changed); --clients clients.

Targets: issue >= 0.2x raw; ocsp (cached status) >= 1.5x raw. The client runs on the
same host as the server and takes CPU from it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from asn1crypto import csr as asn1_csr  # noqa: E402
from asn1crypto import keys as asn1_keys  # noqa: E402
from asn1crypto import ocsp, pem, x509  # noqa: E402

from ca.signer import signature_algorithm  # noqa: E402
from scripts.bench.keystore_http import _trustctl, rate, served  # noqa: E402
from scripts.bench.load import http_rate  # noqa: E402
from trust.keys import KeyAlgorithm, generate  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402

MESSAGE = b"k" * 32
TARGETS = {"issue": 0.2, "ocsp": 1.5}


def sm2_csr_pem() -> str:
    key = generate(KeyAlgorithm.SM2)
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.build({"common_name": "基准测试", "country_name": "CN"}),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(key.public_bytes_spki()),
            "attributes": [],
        }
    )
    der = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": signature_algorithm(key.algorithm),
            "signature": key.sign(info.dump()),
        }
    ).dump()
    return pem.armor("CERTIFICATE REQUEST", der).decode("ascii")


def ocsp_request(issuer_pem: str, serial_hex: str) -> bytes:
    issuer = x509.Certificate.load(pem.unarmor(issuer_pem.encode())[2])

    def sha1(data: bytes) -> bytes:
        return hashlib.sha1(data, usedforsecurity=False).digest()

    cert_id = {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": sha1(issuer.subject.dump()),
        "issuer_key_hash": sha1(issuer.public_key["public_key"].contents[1:]),
        "serial_number": int(serial_hex, 16),
    }
    return ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    handle = get_backend("openssl").generate()
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp) / "var") as (base, _, _):
        env = {**os.environ, "TRUST_VAR_DIR": str(Path(tmp) / "var")}
        for name in ("TRUST_DATABASE_URL", "TRUST_REDIS_URL", "TRUST_MASTER_KEY"):
            env.pop(name, None)
        token = _trustctl(env, "tokens", "create", "--role", "ca_operator").strip()
        cas = json.loads(_trustctl(env, "ca", "list", "--json"))["cas"]
        issuing = next(c for c in cas if c["algorithm"] == "sm2" and c["parent_id"])
        issue_path = f"/v1/cas/{issuing['id']}/certificates"
        issue_body = json.dumps({"csr_pem": sm2_csr_pem(), "profile": "person"}).encode()
        issue_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        first = httpx.post(base + issue_path, content=issue_body, headers=issue_headers).json()
        query = ocsp_request(issuing["certificate_pem"], first["serial_hex"])
        ocsp_headers = {"Content-Type": "application/ocsp-request"}
        get_path = "/ocsp/" + quote(base64.b64encode(query).decode("ascii"), safe="")

        def issue(clients: int) -> float:
            return http_rate(
                base,
                issue_path,
                issue_body,
                headers=issue_headers,
                seconds=args.seconds,
                clients=clients,
                expect=201,
            )

        def ocsp_post(clients: int) -> float:
            return http_rate(
                base, "/ocsp", query, headers=ocsp_headers, seconds=args.seconds, clients=clients
            )

        def ocsp_get(clients: int) -> float:
            return http_rate(
                base, get_path, b"", headers={}, seconds=args.seconds, clients=clients, method="GET"
            )

        runs: dict[str, tuple[Callable[[int], float], int, str]] = {
            "issue, 1 client": (issue, 1, "issue"),
            f"issue, {args.clients} clients": (issue, args.clients, "issue"),
            f"ocsp POST cached, {args.clients} clients": (ocsp_post, args.clients, "ocsp"),
            f"ocsp GET cached, {args.clients} clients": (ocsp_get, args.clients, "ocsp"),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, (measure, clients, _target) in runs.items():
                raw = rate(lambda: (handle.sign(MESSAGE), 1)[1], args.seconds)
                http = measure(clients)
                if name not in best or http / raw > best[name][1] / best[name][0]:
                    best[name] = (raw, http)

    print(f"1 worker, SQLite; {args.rounds} rounds of {args.seconds:.1f} s; operations/s")
    print(f"{'':34}{'raw':>8}{'http':>8}{'ratio':>8}{'target':>8}")
    for name, (raw, http) in best.items():
        target = TARGETS[runs[name][2]]
        verdict = "ok" if http / raw >= target else "MISSED"
        print(f"{name:34}{raw:>8.0f}{http:>8.0f}{http / raw:>8.2f}{target:>7.2f} {verdict}")


if __name__ == "__main__":
    main()
