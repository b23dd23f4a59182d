"""TSA units certified by the project's CA (profile ``tsa``): openssl accepts ECDSA tokens
up to the CA root, and SM2 tokens verify here with the CA-issued certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import pem, x509

from ca.issue import IssueRequest
from tests.ca_support import hierarchy, make_env, openssl_output
from tests.tsa_support import START, request
from timestamp import SqlTokenLog, TimestampAuthority, TsaUnit, parse_response, verify_token
from trust.clock import FakeClock
from trust.cms import KeySigner
from trust.keys import KeyAlgorithm, PrivateKey, generate

DATA = b"stamped by a CA-certified unit\n"


def certified_unit(
    url: str, algorithm: KeyAlgorithm
) -> tuple[TimestampAuthority, PrivateKey, list[x509.Certificate]]:
    env = make_env(url)
    _root, sub = hierarchy(env, algorithm)
    key = generate(algorithm)
    issued = env.ca.issue(
        IssueRequest(
            ca_id=sub.id,
            profile="tsa",
            public_key=key.public_bytes_spki(),
            subject={"common_name": f"Test TSA {algorithm}"},
        )
    )
    chain = [x509.Certificate.load(der) for der in env.ca.chain(sub.id)]
    cert = x509.Certificate.load(issued.certificate_der)
    unit = TsaUnit("unit", KeySigner(key, cert), "1.2.156.112233.3.1", chain=chain)
    return TimestampAuthority([unit], SqlTokenLog(env.db), FakeClock(START)), key, [cert, *chain]


@pytest.mark.openssl_cli
def test_openssl_verifies_a_token_of_a_ca_certified_ecdsa_unit(
    sqlite_url: str, tmp_path: Path
) -> None:
    tsa, _key, certs = certified_unit(sqlite_url, KeyAlgorithm.ECDSA_P256)
    leaf, *cas = certs
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", cas[-1].dump()))
    untrusted = b"".join(pem.armor("CERTIFICATE", c.dump()) for c in [leaf, *cas[:-1]])
    (tmp_path / "untrusted.pem").write_bytes(untrusted)
    (tmp_path / "data.bin").write_bytes(DATA)
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(tsa.respond(request(DATA)))
    code, out = openssl_output(
        "ts", "-verify", "-in", reply, "-data", tmp_path / "data.bin",
        "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "untrusted.pem",
    )  # fmt: skip
    assert code == 0 and "Verification: OK" in out, out


def test_sm2_token_of_a_ca_certified_unit(sqlite_url: str) -> None:
    tsa, _key, certs = certified_unit(sqlite_url, KeyAlgorithm.SM2)
    token = parse_response(tsa.respond(request(DATA, "sm3"))).token
    assert token is not None
    result = verify_token(token, data=DATA)
    assert result.ok, result.problems
    assert result.eku_ok and result.ess_ok
    assert result.signer_certificate is not None
    assert result.signer_certificate.dump() == certs[0].dump()
    assert len(result.cms.certificates) == len(certs)  # certReq: unit certificate and chain
