"""Third-party SM2 certificates (Tongsuo, gmssl.cn, gmcert.org) parse and verify with the CA's
certificate code; the noza ones (signed without Z) are rejected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms, pem

from ca.certs import load_certificate, load_certificates, name_text, verify_certificate
from trust.errors import InvalidSignature

VECTORS = Path(__file__).parent / "vectors" / "certs"


def _cert(name: str):  # type: ignore[no-untyped-def]
    return load_certificate((VECTORS / name).read_bytes())


def test_tongsuo_root_and_end_entity() -> None:
    root = _cert("tongsuo_sm2-root-cert.pem")
    verify_certificate(root, root)
    verify_certificate(_cert("tongsuo_sm2-cert.pem"), root)


def test_tongsuo_dual_certificate_chain() -> None:
    root, sub = load_certificates((VECTORS / "tongsuo_sm2_chain-ca.crt").read_bytes())
    verify_certificate(root, root)
    verify_certificate(sub, root)
    sign, enc = _cert("tongsuo_sm2_client_sign.crt"), _cert("tongsuo_sm2_client_enc.crt")
    verify_certificate(sign, sub)
    verify_certificate(enc, sub)
    assert sign.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert enc.key_usage_value.native == {"key_encipherment", "data_encipherment", "key_agreement"}


def test_expired_certificate_has_a_valid_signature() -> None:
    _, sub = load_certificates((VECTORS / "tongsuo_sm2_chain-ca.crt").read_bytes())
    expired = _cert("tongsuo_sm2_server_sign_expire.crt")
    verify_certificate(expired, sub)
    assert expired.not_valid_after == datetime(2001, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cert", "issuer"),
    [
        ("tongsuo_sm2-noza-root-cert.pem", "tongsuo_sm2-noza-root-cert.pem"),
        ("tongsuo_sm2-noza-cert.pem", "tongsuo_sm2-noza-root-cert.pem"),
    ],
)
def test_certificates_signed_without_z_are_rejected(cert: str, issuer: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_certificate(_cert(cert), _cert(issuer))


def test_gmssl_cn_chain_with_null_parameters() -> None:
    _, _, der = pem.unarmor((VECTORS / "gmssl_cn_certificate_chain.p7b.pem").read_bytes())
    signed = cms.ContentInfo.load(der)["content"]
    root, middle = (c.chosen for c in signed["certificates"])
    assert root["signature_algorithm"]["parameters"].native is None
    assert root["signature_algorithm"].dump().endswith(b"\x05\x00")  # NULL written out
    verify_certificate(root, root)
    verify_certificate(middle, root)
    assert "RootCA for Test" in name_text(root.subject)


def test_gmcert_chinese_subjects_parse() -> None:
    sign = _cert("gmcert_sign_cert.pem")
    assert (
        name_text(sign.subject)
        == "C=CN, ST=浙江, L=杭州, O=测试机构, OU=测试组织, CN=测试服务器名称"
    )
    assert _cert("gmcert_enc_cert.pem").subject == sign.subject
