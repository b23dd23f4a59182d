"""trustctl signers create|list|show|disable|enable and trustctl sign raw|cms."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from asn1crypto import cms, x509
from typer.testing import CliRunner

from tests.test_cli_ca import cas, run
from tests.test_cli_ca import cli as cli  # noqa: F401  (the fixture)
from trust.cms import verify_signed_data
from trust.sm2.select import get_backend


def _key(cli: CliRunner, algorithm: str = "SM2") -> str:
    out = run(cli, "keys", "create", "--algorithm", algorithm, "--label", "k", "--json").output
    return str(json.loads(out)["id"])


def test_create_list_show_disable_and_sign(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    sm2_ca = next(c for c in cas(cli) if c["algorithm"] == "sm2" and c["parent_id"])
    out = run(
        cli,
        "signers",
        "create",
        "--key",
        _key(cli),
        "--label",
        "合同签名",
        "--ca",
        sm2_ca["id"],
        "--subject",
        "CN=张三",
        "--json",
    ).output
    signer = json.loads(out)
    sid = signer["id"]
    assert signer["source"] == "issued" and signer["chain_pem"].count("BEGIN") == 2
    listed = json.loads(run(cli, "signers", "list", "--json").output)["signers"]
    assert [s["id"] for s in listed] == [sid]
    assert sid in run(cli, "signers", "show", sid).output

    doc = tmp_path / "doc.txt"
    doc.write_bytes("合同".encode() * 100)
    point = (
        x509.Certificate.load(base64.b64decode(signer["certificate_pem"].split("-----")[2]))
        .public_key["public_key"]
        .native
    )
    signature = base64.b64decode(run(cli, "sign", "raw", str(doc), "--signer", sid).output)
    get_backend("pure").load_public(point).verify(doc.read_bytes(), signature)

    out_file = tmp_path / "doc.p7s"
    run(
        cli,
        "sign",
        "cms",
        str(doc),
        "--signer",
        sid,
        "--detached",
        "--chain",
        "--out",
        str(out_file),
    )
    der = out_file.read_bytes()
    assert cms.ContentInfo.load(der)["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"
    assert verify_signed_data(der, content=doc.read_bytes()).ok

    run(cli, "signers", "disable", sid)
    refused = run(cli, "sign", "raw", str(doc), "--signer", sid, code=2)
    assert "signer_disabled" in refused.output
    run(cli, "signers", "enable", sid)
    run(cli, "sign", "raw", str(doc), "--signer", sid)
    bad = run(cli, "sign", "cms", str(doc), "--signer", sid, "--profile", "x", code=2)
    assert "bad_request" in bad.output
    run(cli, "signers", "create", "--key", _key(cli), "--label", "x", code=2)
