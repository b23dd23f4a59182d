"""The TSA against ``openssl ts``: its queries are answered, its -reply -text prints our
replies, and its -verify accepts ECDSA tokens against the test root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem

from tests.conftest import need_service
from tests.tsa_support import authority, migrated, tsa_chain
from timestamp import TimestampAuthority, parse_response, verify_token
from trust.keys import KeyAlgorithm

pytestmark = pytest.mark.openssl_cli
DATA = b"a document to time-stamp\n"


def openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("openssl") is None:
        need_service("openssl", "the openssl command line is not on PATH")
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


@pytest.fixture
def tsa(sqlite_url: str) -> TimestampAuthority:
    return authority(migrated(sqlite_url))


def _query(tmp_path: Path, digest_flag: str) -> Path:
    data = tmp_path / "data.bin"
    data.write_bytes(DATA)
    query = tmp_path / "query.tsq"
    done = openssl("ts", "-query", "-data", data, digest_flag, "-cert", "-out", query)
    assert done.returncode == 0, done.stderr.decode()
    return query


@pytest.mark.parametrize("digest_flag", ["-sm3", "-sha256"])
@pytest.mark.parametrize("unit", ["sm2", "ecdsa"])
def test_openssl_query_answered_and_printed(
    tsa: TimestampAuthority, tmp_path: Path, unit: str, digest_flag: str
) -> None:
    query = _query(tmp_path, digest_flag)
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(tsa.respond(query.read_bytes(), unit))
    done = openssl("ts", "-reply", "-in", reply, "-text")
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    assert "Status: Granted." in text
    assert f"Hash Algorithm: {digest_flag[1:]}" in text
    assert "Nonce: 0x" in text and "Ordering: no" in text
    token = parse_response(reply.read_bytes()).token
    assert token is not None
    result = verify_token(token, data=DATA)
    assert result.ok, result.problems


@pytest.mark.parametrize("digest_flag", ["-sm3", "-sha256"])
def test_openssl_verifies_ecdsa_tokens(
    tsa: TimestampAuthority, tmp_path: Path, digest_flag: str
) -> None:
    root, leaf, _key = tsa_chain(KeyAlgorithm.ECDSA_P256)
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", root.dump()))
    (tmp_path / "tsa.pem").write_bytes(pem.armor("CERTIFICATE", leaf.dump()))
    query = _query(tmp_path, digest_flag)
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(tsa.respond(query.read_bytes(), "ecdsa"))
    common = ["ts", "-verify", "-in", reply, "-CAfile", tmp_path / "root.pem"]
    done = openssl(*common, "-untrusted", tmp_path / "tsa.pem", "-data", tmp_path / "data.bin")
    assert b"Verification: OK" in done.stdout, done.stderr.decode()
    done = openssl(*common, "-queryfile", query)  # nonce and imprint against the query
    assert b"Verification: OK" in done.stdout, done.stderr.decode()
    (tmp_path / "other.bin").write_bytes(DATA + b"!")
    done = openssl(*common, "-data", tmp_path / "other.bin")
    assert b"Verification: OK" not in done.stdout


def test_openssl_prints_a_rejection(tsa: TimestampAuthority, tmp_path: Path) -> None:
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(tsa.respond(b"garbage"))
    done = openssl("ts", "-reply", "-in", reply, "-text")
    assert done.returncode == 0, done.stderr.decode()
    assert "Status: Rejected." in done.stdout.decode()
    assert "the data submitted has the wrong format" in done.stdout.decode()


@pytest.mark.parametrize("ess_alg", ["sha1", "sha256"])
def test_we_verify_openssl_tokens(tmp_path: Path, ess_alg: str) -> None:
    """An ``openssl ts -reply`` token: ESS signingCertificate (v1, SHA-1) or V2 (SHA-256)."""
    _root, leaf, key = tsa_chain(KeyAlgorithm.ECDSA_P256)
    (tmp_path / "tsa.pem").write_bytes(pem.armor("CERTIFICATE", leaf.dump()))
    (tmp_path / "tsa.key").write_bytes(key.private_bytes_pkcs8(pem=True))
    config = tmp_path / "tsa.cnf"
    config.write_text(
        "[ tsa ]\ndefault_tsa = unit\n[ unit ]\n"
        f"serial = {tmp_path / 'serial'}\nsigner_digest = sha256\n"
        "default_policy = 1.2.156.112233.3.7\ndigests = sha256, sm3\n"
        "accuracy = secs:1, millisecs:500\nordering = yes\ntsa_name = yes\n"
        f"ess_cert_id_alg = {ess_alg}\n"
    )
    query = _query(tmp_path, "-sha256")
    reply = tmp_path / "reply.tsr"
    done = openssl(
        "ts", "-reply", "-config", config, "-queryfile", query,
        "-signer", tmp_path / "tsa.pem", "-inkey", tmp_path / "tsa.key", "-out", reply,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    token = parse_response(reply.read_bytes()).token
    assert token is not None
    result = verify_token(token, data=DATA)
    assert result.ok, result.problems
    assert result.ordering is True and result.policy == "1.2.156.112233.3.7"
    assert not verify_token(token, data=DATA + b"!").ok
