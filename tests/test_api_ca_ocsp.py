"""``openssl ocsp -url`` against a real server (trustctl serve): good, then revoked, for a
certificate of the default ECDSA issuing CA, with and without a nonce; a nonce-less
answer kept for repeated requests gives way to the revocation at once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.ca_support import openssl_output, write
from tests.test_api_ca import ecdsa_csr
from tests.tsa_support import served, server_env, trustctl


@pytest.mark.slow
def test_openssl_ocsp_url_good_then_revoked(tmp_path: Path) -> None:
    env = server_env(tmp_path / "var")
    trustctl(env, "init")
    token = trustctl(env, "tokens", "create", "--role", "ca_operator").strip()
    cas = json.loads(trustctl(env, "ca", "list", "--json"))["cas"]
    sub = next(c for c in cas if c["algorithm"] == "ecdsa-p256" and c["parent_id"])
    root = next(c for c in cas if c["id"] == sub["parent_id"])
    headers = {"Authorization": f"Bearer {token}"}
    with served(env) as base, httpx.Client(base_url=base, headers=headers) as client:
        r = client.post(
            f"/v1/cas/{sub['id']}/certificates",
            json={"csr_pem": ecdsa_csr("OCSP 客户端"), "profile": "person"},
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v1/certificates/{r.json()['serial_hex']}"
        serial = r.json()["serial_hex"]
        leaf = write(tmp_path / "leaf.pem", r.json()["certificate_pem"])
        issuer = write(tmp_path / "sub.pem", sub["certificate_pem"])
        anchor = write(tmp_path / "root.pem", root["certificate_pem"])

        def ask(*options: str) -> str:
            code, out = openssl_output(
                "ocsp", "-issuer", issuer, "-cert", leaf, "-url", f"{base}/ocsp",
                "-CAfile", anchor, "-verify_other", issuer, *options,
            )  # fmt: skip
            assert code == 0, out
            assert "Response verify OK" in out, out
            return out

        assert f"{leaf}: good" in ask()  # with a nonce: echoed, signed for this request
        first = ask("-no_nonce", "-resp_text")
        assert f"{leaf}: good" in first and "WARNING" not in first
        again = ask("-no_nonce", "-resp_text")  # the kept answer: the same signed response
        assert _produced_at(again) == _produced_at(first)

        r = client.post(f"/v1/certificates/{serial}/revoke", json={"reason": "key_compromise"})
        assert r.status_code == 200, r.text
        assert f"{leaf}: revoked" in ask("-no_nonce")  # the kept answer went with the change
        assert f"{leaf}: revoked" in ask()


def _produced_at(text: str) -> str:
    return next(line for line in text.splitlines() if "Produced At" in line)
