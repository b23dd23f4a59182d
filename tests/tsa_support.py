"""Shared pieces of the TSA tests: test chains with a timeStamping certificate, units, an
authority on a migrated database, requests built with asn1crypto, and the default units
of an app's store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import httpx
from asn1crypto import algos, cms, tsp, x509

from api.deps import Services
from ca.service import ensure_default_hierarchy
from tests.certs_helper import make_chain
from timestamp import ClockHealth, SqlTokenLog, TimestampAuthority, TsaUnit
from timestamp.provision import ensure_default_units
from timestamp.registry import UnitRecord
from trust.clock import FakeClock
from trust.cms import KeySigner
from trust.cms.algorithms import DIGEST_OIDS, digest
from trust.db import Database
from trust.keys import KeyAlgorithm, PrivateKey
from trust.migrations import upgrade
from trust.sm2.select import get_backend

SM2_POLICY = "1.2.156.112233.3.1"
ECDSA_POLICY = "1.2.156.112233.3.2"
OTHER_POLICY = "1.2.156.112233.3.9"
START = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


@cache
def tsa_chain(algorithm: KeyAlgorithm) -> tuple[x509.Certificate, x509.Certificate, PrivateKey]:
    return make_chain(algorithm, extended_key_usage=("time_stamping",))


def units() -> list[TsaUnit]:
    sm2_root, sm2_cert, sm2_key = tsa_chain(KeyAlgorithm.SM2)
    ec_root, ec_cert, ec_key = tsa_chain(KeyAlgorithm.ECDSA_P256)
    return [
        TsaUnit("sm2", KeySigner(sm2_key, sm2_cert), SM2_POLICY, chain=(sm2_root,)),
        TsaUnit(
            "ecdsa",
            KeySigner(ec_key, ec_cert),
            ECDSA_POLICY,
            other_policies=frozenset({OTHER_POLICY}),
            accuracy=timedelta(milliseconds=500),
        ),
    ]


def migrated(url: str) -> Database:
    db = Database(url)
    upgrade(db)
    return db


def authority(
    db: Database, clock: FakeClock | None = None, health: ClockHealth | None = None
) -> TimestampAuthority:
    return TimestampAuthority(units(), SqlTokenLog(db), clock or FakeClock(START), health)


def request(
    data: bytes = b"document",
    hash_algorithm: str = "sha256",
    *,
    nonce: int | None = 0x1234567890ABCDEF,
    cert_req: bool = True,
    policy: str | None = None,
    hash_oid: str | None = None,
    hashed: bytes | None = None,
    version: int = 1,
    extensions: list[dict[str, object]] | None = None,
) -> bytes:
    fields: dict[str, object] = {
        "version": version,
        "message_imprint": {
            "hash_algorithm": algos.DigestAlgorithm(
                {"algorithm": hash_oid or DIGEST_OIDS[hash_algorithm]}
            ),
            "hashed_message": hashed if hashed is not None else digest(hash_algorithm, data),
        },
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    if extensions is not None:
        fields["extensions"] = extensions
    return tsp.TimeStampReq(fields).dump()


def provision_defaults(services: Services) -> list[UnitRecord]:
    """The default CA hierarchies and TSA units, as ``trustctl init`` makes them."""
    ensure_default_hierarchy(services.ca(), services.settings)
    done = ensure_default_units(services.tsa_units(), services.ca(), services.settings)
    return [record for record, _created in done]


def root_of(record: UnitRecord) -> x509.Certificate:
    return x509.Certificate.load(record.chain[-1])


def verify_with_pure_backend(token: bytes, certificate: x509.Certificate) -> None:
    """Check an SM2 token's signature over its signed attributes with the pure gmssl
    backend, an implementation independent of the one that signed (raises if bad)."""
    signer_info = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    attrs = b"\x31" + signer_info["signed_attrs"].dump()[1:]  # signed as a SET OF, not [0]
    point = certificate.public_key["public_key"].native
    get_backend("pure").load_public(point).verify(attrs, signer_info["signature"].native)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(var: Path, **settings: str) -> dict[str, str]:
    """Environment for ``trustctl`` over ``var`` (SQLite there), without the rate limit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    env.update(
        TRUST_VAR_DIR=str(var),
        TRUST_LOG_LEVEL="WARNING",
        TRUST_ACCESS_LOG="false",
        TRUST_RATE_LIMIT_REQUESTS=str(10**9),
    )
    env.update({f"TRUST_{k.upper()}": v for k, v in settings.items()})
    return env


def trustctl(env: dict[str, str], *args: str) -> str:
    exe = str(Path(sys.executable).with_name("trustctl"))
    done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def served(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """``trustctl serve`` (real uvicorn, ``workers`` processes) until the block ends; yields
    its base URL once /readyz answers."""
    port = _free_port()
    log = Path(env["TRUST_VAR_DIR"]) / f"serve-{port}.log"
    exe = str(Path(sys.executable).with_name("trustctl"))
    with log.open("wb") as out:
        server = subprocess.Popen(
            [exe, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _ready(base):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text())
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
