"""ECDSA and RSA CMS made by the signing service verify with ``openssl cms -verify`` up to
the CA root (detached and attached; the issuing CA comes in the SignedData). OpenSSL 3.0
cannot read SM2 CMS: tests/test_api_signers.py checks those with the gmssl engine."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.api_support import ApiEnv, make_env
from tests.ca_support import openssl_output, run_openssl, write
from tests.signers_support import api_hierarchy, api_signer, operator_headers
from tests.test_api_keys import b64
from trust.auth import Grant, Role
from trust.keys import KeyAlgorithm

CONTENT = "合同第 7 条\n".encode() * 50


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[ApiEnv, Path, dict[str, str]]:
    """An app with an ECDSA P-256 hierarchy and an ECDSA and an RSA signer under it."""
    tmp = tmp_path_factory.mktemp("cms")
    env = make_env(tmp)
    root, issuing = api_hierarchy(env, KeyAlgorithm.ECDSA_P256)
    write(tmp / "root.pem", root.certificate_pem)
    headers = operator_headers(env)
    signers = {
        algorithm: api_signer(env, headers, issuing, algorithm)["id"]
        for algorithm in ("ECDSA-P256", "RSA-2048")
    }
    return env, tmp, signers


@pytest.mark.parametrize("algorithm", ["ECDSA-P256", "RSA-2048"])
@pytest.mark.parametrize("detached", [True, False])
def test_openssl_cms_verify(
    signed: tuple[ApiEnv, Path, dict[str, str]], algorithm: str, detached: bool
) -> None:
    env, tmp, signers = signed
    sid = signers[algorithm]
    r = env.client.post(
        f"/v1/signers/{sid}/cms",
        json={"data_b64": b64(CONTENT), "detached": detached, "include_chain": True},
        headers=env.headers(Grant.narrowed(Role.signer, [sid], "signer")),
    )
    assert r.status_code == 200, r.text
    p7 = write(tmp / f"{algorithm}-{detached}.p7", base64.b64decode(r.json()["cms_b64"]))
    data = write(tmp / "content.txt", CONTENT)
    out = tmp / "out.bin"
    args: list[str | Path] = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        p7,
        "-CAfile",
        tmp / "root.pem",
    ]
    if detached:
        args += ["-content", data]
    run_openssl(*args, "-out", out)
    assert out.read_bytes() == CONTENT

    if detached:  # tampered content fails, so the check above can fail
        bad = write(tmp / "bad.txt", CONTENT + b"x")
        code, text = openssl_output(*args[:-2], "-content", bad, "-out", out)
        assert code != 0 and "content verify error" in text


def test_certificate_from_an_openssl_ca_is_imported_and_its_cms_verifies(tmp_path: Path) -> None:
    """Accepting theirs: a certificate an independent CA (the openssl CLI) issued for a
    key-store key is imported with its chain; our CMS then verifies up to that CA."""
    env = make_env(tmp_path)
    headers = operator_headers(env)
    key = env.client.post(
        "/v1/keys",
        json={"algorithm": "ECDSA-P256", "purpose": "sign", "label": "k"},
        headers=headers,
    ).json()["id"]
    public = write(
        tmp_path / "pub.pem", env.client.get(f"/v1/keys/{key}/public", headers=headers).content
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run_openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        tmp_path / "ca.key",
        "-out",
        tmp_path / "ca.pem",
        "-subj",
        "/CN=External Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    run_openssl(
        "req",
        "-new",
        *ec,
        "-keyout",
        tmp_path / "x.key",
        "-subj",
        "/CN=Imported",
        "-out",
        tmp_path / "x.csr",
    )
    write(
        tmp_path / "ext.cnf",
        "keyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=emailProtection\n",
    )
    run_openssl(
        "x509",
        "-req",
        "-in",
        tmp_path / "x.csr",
        "-force_pubkey",
        public,
        "-CA",
        tmp_path / "ca.pem",
        "-CAkey",
        tmp_path / "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        tmp_path / "ext.cnf",
        "-out",
        tmp_path / "cert.pem",
    )
    body = {
        "label": "imported",
        "key_id": key,
        "certificate_pem": (tmp_path / "cert.pem").read_text(),
        "chain_pem": (tmp_path / "ca.pem").read_text(),
    }
    created = env.client.post("/v1/signers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "imported"
    sid = created.json()["id"]
    r = env.client.post(
        f"/v1/signers/{sid}/cms",
        json={"data_b64": b64(CONTENT), "include_chain": True},
        headers=env.headers(Grant(Role.signer)),
    )
    p7 = write(tmp_path / "x.p7", base64.b64decode(r.json()["cms_b64"]))
    out = tmp_path / "out.bin"
    run_openssl(
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        p7,
        "-CAfile",
        tmp_path / "ca.pem",
        "-out",
        out,
    )
    assert out.read_bytes() == CONTENT

    other = env.client.post(
        "/v1/keys",
        json={"algorithm": "ECDSA-P256", "purpose": "sign", "label": "k2"},
        headers=headers,
    ).json()["id"]
    refused = env.client.post("/v1/signers", json={**body, "key_id": other}, headers=headers)
    assert refused.status_code == 400 and refused.json()["code"] == "signer_certificate_mismatch"
