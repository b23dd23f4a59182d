"""Helpers shared by the CA tests: a CA over a fresh store, openssl runs, PEM files."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509

from ca.issue import CaUrls
from ca.service import CaInfo, CertificateAuthority, CreateCaRequest
from ca.signer import MemoryKeySource, signature_algorithm
from ca.store import SqlCertificateStore
from trust import migrations
from trust.clock import Clock, SystemClock
from trust.db import Database
from trust.keys import KeyAlgorithm, PrivateKey

DISTID = "distid:1234567812345678"
URLS = CaUrls("http://ca.example.cn", "http://ca.example.cn/ocsp")


@dataclass
class CaEnv:
    ca: CertificateAuthority
    store: SqlCertificateStore
    keys: MemoryKeySource
    db: Database


def make_env(url: str, clock: Clock | None = None) -> CaEnv:
    db = Database(url)
    migrations.upgrade(db)
    store = SqlCertificateStore(db)
    keys = MemoryKeySource()
    ca = CertificateAuthority(
        store, keys, clock or SystemClock(), URLS, ocsp_cache_seconds=60, escrow=keys
    )
    return CaEnv(ca, store, keys, db)


def hierarchy(env: CaEnv, algorithm: KeyAlgorithm, prefix: str = "测试") -> tuple[CaInfo, CaInfo]:
    root = env.ca.create_ca(CreateCaRequest(f"{prefix}根CA {algorithm}", algorithm))
    sub = env.ca.create_ca(
        CreateCaRequest(f"{prefix}签发CA {algorithm}", algorithm, parent_id=root.id)
    )
    return root, sub


def need_openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command line not installed")


def run_openssl(*args: str | Path) -> str:
    need_openssl()
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed:\n{out}")
    return out


def openssl_output(*args: str | Path) -> tuple[int, str]:
    need_openssl()
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace") + proc.stderr.decode(
        "utf-8", "replace"
    )


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def crl_pem(der: bytes) -> bytes:
    return pem.armor("X509 CRL", der)


def python_csr(key: PrivateKey, subject: dict[str, str], signer_id: bytes | None = None) -> bytes:
    """A PKCS#10 request signed by ``key`` (SM2 with ``signer_id``, default ID if None)."""
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.build(subject),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(key.public_bytes_spki()),
            "attributes": [],
        }
    )
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": signature_algorithm(key.algorithm),
            "signature": key.sign(info.dump(), signer_id=signer_id),
        }
    ).dump()
