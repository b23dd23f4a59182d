"""trustctl init (TSA units sm2 and ecdsa, once) and trustctl tsa: units, stamp, verify,
rotate."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.test_cli_ca import cli, run
from timestamp import protocol

__all__ = ["cli"]  # the fixture, shared with the CA CLI tests


def test_tsa_cli(cli: CliRunner, tmp_path: Path) -> None:
    first = run(cli, "init")
    assert "created  TSA unit sm2" in first.stdout and "created  TSA unit ecdsa" in first.stdout
    assert "policy 2.999.1.1 of unit sm2 is a placeholder" in first.stderr
    again = run(cli, "init").stdout
    assert "existing TSA unit sm2" in again and "created  TSA" not in again

    units = run(cli, "tsa", "units").stdout.splitlines()
    assert [line.split()[0] for line in units] == ["ecdsa", "sm2"]
    assert run(cli, "tsa", "units", "--pem").stdout.count("BEGIN CERTIFICATE") == 6

    data = tmp_path / "report.txt"
    data.write_bytes(b"the annual report\n")
    stamped = run(cli, "tsa", "stamp", str(data)).stdout
    token = tmp_path / "report.txt.tst"
    assert "from unit sm2" in stamped and token.exists()
    out = run(cli, "tsa", "verify", str(token), "--data", str(data)).stdout
    assert "imprint    sm3" in out and "sm2 generation 1 (active)" in out
    assert "verdict    OK" in out

    ecdsa_token = tmp_path / "e.tst"
    run(
        cli, "tsa", "stamp", str(data), "--unit", "ecdsa", "--hash", "sha256",
        "--out", str(ecdsa_token),
    )  # fmt: skip
    # A whole TimeStampResp (as openssl ts -reply -out writes) is accepted too.
    reply = tmp_path / "e.tsr"
    reply.write_bytes(protocol.granted(ecdsa_token.read_bytes()))
    out = run(cli, "tsa", "verify", str(reply), "--data", str(data)).stdout
    assert "imprint    sha256" in out and "ecdsa generation 1" in out

    other = tmp_path / "other.txt"
    other.write_bytes(b"something else\n")
    out = run(cli, "tsa", "verify", str(token), "--data", str(other), code=1).stdout
    assert "message imprint does not match" in out and "verdict    FAILED" in out

    key_id = units[1].split("key ")[1].split()[0]
    refused = run(cli, "keys", "rotate", key_id, code=2).output
    assert "key_bound_to_tsa_unit" in refused and "trustctl tsa rotate sm2" in refused
    assert "gen 2" in run(cli, "tsa", "rotate", "sm2").stdout
    out = run(cli, "tsa", "verify", str(token), "--data", str(data)).stdout
    assert "sm2 generation 1 (retired)" in out and "verdict    OK" in out
    assert len(run(cli, "tsa", "units", "--all").stdout.splitlines()) == 3
    new_token = tmp_path / "new.tst"
    run(cli, "tsa", "stamp", str(data), "--out", str(new_token))
    out = run(cli, "tsa", "verify", str(new_token), "--data", str(data)).stdout
    assert "sm2 generation 2 (active)" in out

    assert "not_found" in run(cli, "tsa", "stamp", str(data), "--unit", "x", code=2).output
    assert "md5" in run(cli, "tsa", "stamp", str(data), "--hash", "md5", code=2).output
    assert "not_found" in run(cli, "tsa", "rotate", "x", code=2).output

    assert (
        "policy 1.2.156.112233.5.1" in run(cli, "tsa", "policy", "sm2", "1.2.156.112233.5.1").stdout
    )
    assert "tsa_policy_invalid" in run(cli, "tsa", "policy", "sm2", "oid", code=2).output
    assert "not_found" in run(cli, "tsa", "policy", "x", "1.2.3", code=2).output
    again = run(cli, "init")
    assert (
        "existing TSA unit sm2" in again.stdout and "unit sm2 is a placeholder" not in again.stderr
    )
    assert "unit ecdsa is a placeholder" in again.stderr
    run(cli, "tsa", "stamp", str(data), "--out", str(new_token))
    assert (
        "policy     1.2.156.112233.5.1"
        in run(cli, "tsa", "verify", str(new_token), "--data", str(data)).stdout
    )
    junk = tmp_path / "junk.tst"
    junk.write_bytes(b"junk")
    assert "error" in run(cli, "tsa", "verify", str(junk), "--data", str(data), code=2).output
