"""verify_cms: CMS SignedData as validation reports (CFCA SADK samples, openssl cms -sign
ECDSA output, tampering, unknown roots, revocation, timestamps, malformed input)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.certs_helper import make_chain
from tests.test_cms_interop import CFCA_CONTENT, openssl
from tests.validation_support import T0, PycaPki, pyca_crl, pyca_pki
from trust.clock import FakeClock
from trust.cms import KeySigner, build_signed_data, timestamp_token_attribute
from trust.keys import KeyAlgorithm
from trust.validation import (
    CheckStatus,
    CmsCheck,
    Indication,
    RevocationMode,
    SubIndication,
    ValidationReport,
    render_text,
    verify_cms,
)

VECTORS = Path(__file__).parent / "vectors" / "cms"
CONTENT = b"signed content\x00\xff\r\n"
NOW = T0 + timedelta(days=400)  # inside the pyca test PKI's validity
AFTER_CFCA_EXPIRY = datetime(2026, 1, 1, tzinfo=UTC)  # "Jon Snow" expired 2025-11-19


@cache
def pki() -> PycaPki:
    return pyca_pki("ecdsa")


@cache
def rsa_pki() -> PycaPki:
    return pyca_pki("rsa")


def openssl_signed(tmp_path: Path, *, detached: bool = False, p: PycaPki | None = None) -> bytes:
    """``openssl cms -sign`` by the pyca leaf (SHA-256, signed attributes, ESS v2)."""
    p = p or pki()
    cert, key, content = tmp_path / "leaf.pem", tmp_path / "leaf.key", tmp_path / "content"
    cert.write_bytes(p.leaf.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        p.leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    content.write_bytes(CONTENT)
    out = tmp_path / "signed.p7"
    mode = [] if detached else ["-nodetach"]
    done = openssl(
        "cms", "-sign", "-binary", "-md", "sha256", "-in", content, "-signer", cert,
        "-inkey", key, *mode, "-outform", "DER", "-out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return out.read_bytes()


def verify(der: bytes, data: bytes | None = None, **kwargs: Any) -> ValidationReport:
    p = pki()
    options: dict[str, Any] = {
        "anchors": [p.root.der],
        "intermediates": [p.sub.der],
        "clock": FakeClock(NOW),
    }
    options.update(kwargs)
    return verify_cms(der, data, **options)


@pytest.mark.parametrize("name", ["sadk_signed_attached.p7", "sadk_signed_detached.p7"])
def test_cfca_sadk_signature_valid_chain_not_found_and_expiry_shown(name: str) -> None:
    data = CFCA_CONTENT if "detached" in name else None
    report = verify_cms((VECTORS / name).read_bytes(), data, clock=FakeClock(AFTER_CFCA_EXPIRY))
    assert report.check("signature").status is CheckStatus.PASSED
    assert report.check(CmsCheck.SIGNER_CERTIFICATE).status is CheckStatus.PASSED
    assert report.check(CmsCheck.MESSAGE_DIGEST).status is CheckStatus.NOT_PERFORMED
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert report.signer is not None and "Jon Snow" in report.signer.subject
    assert "signer_certificate.outside_validity" in {w.code for w in report.warnings}
    assert "not performed" in render_text(report).lower()


def test_cfca_sadk_other_content_is_sig_crypto_failure() -> None:
    der = (VECTORS / "sadk_signed_detached.p7").read_bytes()
    report = verify_cms(der, CFCA_CONTENT + b" ")
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


@pytest.mark.openssl_cli
@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
@pytest.mark.parametrize("detached", [False, True])
def test_openssl_total_passed(tmp_path: Path, detached: bool, kind: str) -> None:
    p = pki() if kind == "ecdsa" else rsa_pki()
    der = openssl_signed(tmp_path, detached=detached, p=p)
    report = verify(
        der, CONTENT if detached else None, anchors=[p.root.der], intermediates=[p.sub.der]
    )
    assert report.indication is Indication.TOTAL_PASSED, render_text(report)
    assert report.check(CmsCheck.MESSAGE_DIGEST).status is CheckStatus.PASSED
    # openssl adds ESS signingCertificateV2 only in some versions: never a failure here
    ess = report.check(CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE).status
    assert ess in (CheckStatus.PASSED, CheckStatus.NOT_PERFORMED)
    assert report.check("certificate_chain").status is CheckStatus.PASSED
    assert report.claimed_signing_time is not None  # openssl writes signingTime
    assert report.chain[-1].subject.startswith("CN=Test Root") and report.chain[-1].trust_anchor
    # soft-fail without CRLs: revocation is listed as not performed, with the reason
    assert report.check("revocation").status is CheckStatus.NOT_PERFORMED
    assert report.check(CmsCheck.TIMESTAMP).status is CheckStatus.NOT_PERFORMED


@pytest.mark.openssl_cli
def test_tampered_content_is_hash_failure(tmp_path: Path) -> None:
    der = openssl_signed(tmp_path)
    assert der.count(CONTENT) == 1
    report = verify(der.replace(CONTENT, CONTENT.upper()))
    assert report.sub_indication is SubIndication.HASH_FAILURE
    detached = openssl_signed(tmp_path, detached=True)
    assert verify(detached, CONTENT + b"x").sub_indication is SubIndication.HASH_FAILURE
    assert verify(detached).sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND


@pytest.mark.openssl_cli
def test_tampered_signature_is_sig_crypto_failure(tmp_path: Path) -> None:
    der = openssl_signed(tmp_path)
    from trust.cms import verify_signed_data

    signature = verify_signed_data(der).signers[0].signature
    tampered = der.replace(signature, signature[:-1] + bytes([signature[-1] ^ 1]))
    report = verify(tampered)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


@pytest.mark.openssl_cli
def test_unknown_root(tmp_path: Path) -> None:
    other = pyca_pki("ecdsa")
    report = verify(openssl_signed(tmp_path), anchors=[other.root.der])
    assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert report.check("signature").status is CheckStatus.PASSED


@pytest.mark.openssl_cli
def test_revoked_signer_with_crl(tmp_path: Path) -> None:
    p = pki()
    issued = NOW - timedelta(days=1)
    crls = [
        pyca_crl(p.sub, ((p.leaf, NOW - timedelta(days=10)),), this_update=issued),
        pyca_crl(p.root, this_update=issued),
    ]
    report = verify(openssl_signed(tmp_path), crls=crls, revocation_mode=RevocationMode.REQUIRE)
    # No proof of existence before the revocation: INDETERMINATE, not TOTAL_FAILED.
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_NO_POE,
    )
    assert any(e.status == "revoked" for e in report.revocation)


@pytest.mark.openssl_cli
def test_missing_intermediate_is_no_certificate_chain_found(tmp_path: Path) -> None:
    report = verify(openssl_signed(tmp_path), intermediates=[])
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert report.check("signature").status is CheckStatus.PASSED


@pytest.mark.openssl_cli
def test_signer_not_yet_valid_is_not_yet_valid(tmp_path: Path) -> None:
    report = verify(openssl_signed(tmp_path), clock=FakeClock(T0 - timedelta(days=1)))
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.NOT_YET_VALID,
    )


@pytest.mark.openssl_cli
def test_expired_signer_without_proof_is_out_of_bounds(tmp_path: Path) -> None:
    report = verify(openssl_signed(tmp_path), clock=FakeClock(T0 + timedelta(days=4000)))
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
    )


def test_signature_timestamp_is_listed_as_not_verified() -> None:
    root, leaf, key = make_chain(KeyAlgorithm.ECDSA_P256)
    signer = KeySigner(key, leaf)
    token = build_signed_data(b"token", signer)
    der = build_signed_data(
        b"content", signer, unsigned_attributes=[timestamp_token_attribute(token)]
    )
    report = verify_cms(der, anchors=[root])
    assert report.check(CmsCheck.SIGNING_CERTIFICATE_ATTRIBUTE).status is CheckStatus.PASSED
    stamp = report.check(CmsCheck.TIMESTAMP)
    assert stamp.status is CheckStatus.NOT_PERFORMED and "present" in stamp.message
    assert report.time_source == "current"
    assert report.indication is Indication.TOTAL_PASSED, render_text(report)


def _malformed() -> dict[str, bytes]:
    root, leaf, key = make_chain(KeyAlgorithm.SM2)
    good = build_signed_data(b"content", KeySigner(key, leaf))
    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "wrong_outer_tag": b"\x31" + good[1:],
        "wrong_content_type": good.replace(b"\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02", b"\x2a" * 9),
        "huge_length": b"\x30\x84\xff\xff\xff\xff" + good[2:],
        "huge_length_8": b"\x30\x88" + b"\xff" * 8 + good,
        "nested_indefinite": b"\x30\x80" * 50_000 + b"\x00\x00" * 50_000,
        "deep_definite": b"\x30\x82\xff\xff" * 10_000,
        "garbage_1mb": os.urandom(1 << 20),
        "garbage_10mb": os.urandom(10 << 20),
        "octet_string": b"\x04\x03abc",
    }


@pytest.mark.parametrize("name", sorted(_malformed()))
def test_malformed_cms_is_format_failure_fast(name: str) -> None:
    blob = _malformed()[name]
    started = time.monotonic()
    report = verify_cms(blob)
    assert time.monotonic() - started < 1.0
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )
    assert len(report.not_performed) == len(report.checks) - 1
