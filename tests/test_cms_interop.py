"""trust.cms against other producers and verifiers: ``openssl cms`` both ways (ECDSA, RSA)
and the CFCA SADK SM2 samples (GM/T 0010 OIDs, no signed attributes)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from asn1crypto import pem, x509

from tests.certs_helper import make_chain
from tests.conftest import need_service
from trust.cms import KeySigner, build_signed_data, verify_signed_data
from trust.keys import KeyAlgorithm, PrivateKey

VECTORS = Path(__file__).parent / "vectors" / "cms"
CFCA_CONTENT = b"Hello Secret World!"
CONTENT = b"CMS interop content\x00\xff with binary bytes\r\n"
OPENSSL_ALGORITHMS = [KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384, KeyAlgorithm.RSA_2048]


def openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("openssl") is None:
        need_service("openssl", "the openssl command line is not on PATH")
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


@cache
def chain(algorithm: KeyAlgorithm) -> tuple[x509.Certificate, x509.Certificate, PrivateKey]:
    return make_chain(algorithm)


def _files(tmp_path: Path, algorithm: KeyAlgorithm) -> dict[str, Path]:
    root, leaf, key = chain(algorithm)
    files = {
        "root": tmp_path / "root.pem",
        "cert": tmp_path / "signer.pem",
        "key": tmp_path / "signer.key",
        "content": tmp_path / "content.bin",
    }
    files["root"].write_bytes(pem.armor("CERTIFICATE", root.dump()))
    files["cert"].write_bytes(pem.armor("CERTIFICATE", leaf.dump()))
    files["key"].write_bytes(key.private_bytes_pkcs8(pem=True))
    files["content"].write_bytes(CONTENT)
    return files


@pytest.mark.openssl_cli
@pytest.mark.parametrize("algorithm", OPENSSL_ALGORITHMS)
@pytest.mark.parametrize("detached", [True, False])
def test_openssl_verifies_ours(tmp_path: Path, algorithm: KeyAlgorithm, detached: bool) -> None:
    files = _files(tmp_path, algorithm)
    root, leaf, key = chain(algorithm)
    der = build_signed_data(CONTENT, KeySigner(key, leaf), detached=detached)
    (tmp_path / "ours.p7").write_bytes(der)
    content_args: list[str | Path] = ["-content", files["content"]] if detached else []
    common: list[str | Path] = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        tmp_path / "ours.p7",
    ]
    out = tmp_path / "out.bin"
    done = openssl(*common, *content_args, "-noverify", "-out", out)
    assert done.returncode == 0, done.stderr.decode()
    assert out.read_bytes() == CONTENT
    # With the chain: the test certificates carry no EKU, so any purpose.
    done = openssl(*common, *content_args, "-CAfile", files["root"], "-purpose", "any")
    assert done.returncode == 0, done.stderr.decode()
    assert b"Verification successful" in done.stderr


@pytest.mark.openssl_cli
@pytest.mark.parametrize("algorithm", OPENSSL_ALGORITHMS)
@pytest.mark.parametrize("detached", [True, False])
def test_we_verify_openssl(tmp_path: Path, algorithm: KeyAlgorithm, detached: bool) -> None:
    files = _files(tmp_path, algorithm)
    out = tmp_path / "theirs.p7"
    mode = [] if detached else ["-nodetach"]
    done = openssl(
        "cms", "-sign", "-binary", "-md", "sha256", "-in", files["content"],
        "-signer", files["cert"], "-inkey", files["key"], *mode, "-outform", "DER", "-out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    result = verify_signed_data(out.read_bytes(), content=CONTENT if detached else None)
    assert result.ok, [s.problems for s in result.signers]
    assert result.content == CONTENT and result.detached is detached
    (one,) = result.signers
    assert one.certificate is not None and one.certificate.dump() == chain(algorithm)[1].dump()
    assert one.signing_time is not None  # OpenSSL adds signingTime
    assert one.ess_certificate_ok is not False
    tampered = verify_signed_data(out.read_bytes(), content=CONTENT + b"!") if detached else None
    assert tampered is None or not tampered.ok


@pytest.mark.parametrize("name", ["sadk_signed_attached.p7", "sadk_signed_detached.p7"])
def test_cfca_sadk_samples(name: str) -> None:
    data = (VECTORS / name).read_bytes()
    detached = "detached" in name
    result = verify_signed_data(data, content=CFCA_CONTENT if detached else None)
    assert result.ok, [s.problems for s in result.signers]
    assert result.content_info_type == "1.2.156.10197.6.1.4.2.2"
    assert result.content_type == "1.2.156.10197.6.1.4.2.1"
    assert result.content == CFCA_CONTENT and result.detached is detached
    (one,) = result.signers
    assert one.signed_attributes is None  # the signature covers the raw content
    assert one.signature_algorithm == "1.2.156.10197.1.301.1"
    assert one.digest_algorithm == "sm3"
    assert one.certificate is not None
    assert one.certificate.subject.native["common_name"] == "Jon Snow"


def test_cfca_sample_over_other_content_fails() -> None:
    data = (VECTORS / "sadk_signed_detached.p7").read_bytes()
    result = verify_signed_data(data, content=CFCA_CONTENT + b" ")
    assert not result.ok and not result.signers[0].signature_ok
