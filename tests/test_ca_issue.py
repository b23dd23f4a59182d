"""Issuance: hierarchy, profiles, PKCS#10 proof of possession, extensions as openssl prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import pem

from ca.certs import key_identifier, load_certificate, load_certificates, verify_certificate
from ca.issue import IssueRequest, is_uscc
from ca.profiles import PROFILES, list_profiles
from ca.service import CreateCaRequest
from tests.ca_support import DISTID, CaEnv, hierarchy, make_env, python_csr, run_openssl, write
from trust.clock import FakeClock
from trust.errors import (
    BadRequest,
    CsrSignatureInvalid,
    ProfileKeyNotAllowed,
    ProfileSanInvalid,
    ProfileSubjectInvalid,
    ProfileValidityTooLong,
)
from trust.keys import KeyAlgorithm, generate

USCC = "91350100M000100Y43"  # a published example code with a valid check character


@pytest.fixture
def env(sqlite_url: str) -> CaEnv:
    return make_env(sqlite_url)


def _openssl_key(tmp_path: Path, algorithm: str) -> Path:
    key = tmp_path / f"{algorithm}.key"
    opts = {
        "sm2": ["-algorithm", "SM2"],
        "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    }[algorithm]
    run_openssl("genpkey", *opts, "-out", key)
    return key


def _openssl_csr(tmp_path: Path, algorithm: str, subject: str, *extra: str) -> bytes:
    key = _openssl_key(tmp_path, algorithm)
    out = tmp_path / f"{algorithm}.csr"
    sm2 = ["-sm3", "-sigopt", DISTID] if algorithm == "sm2" else []
    run_openssl("req", "-new", "-utf8", "-key", key, "-subj", subject, *sm2, *extra, "-out", out)
    return out.read_bytes()


def test_profiles_are_listed_frozen_and_versioned() -> None:
    names = {p.name for p in list_profiles()}
    assert {
        "person",
        "organization",
        "server",
        "seal_maker",
        "seal_signer",
        "tsa",
        "ocsp",
        "encryption",
    } <= names
    profile = PROFILES["tsa"]
    assert profile.version == 1 and profile.eku_critical
    with pytest.raises(AttributeError):
        profile.version = 2  # type: ignore[misc]


def test_uscc_check_character() -> None:
    assert is_uscc(USCC)
    assert not is_uscc(USCC[:-1] + "4")
    assert not is_uscc("91350100M000100Y4")


@pytest.mark.openssl_cli
def test_sm2_hierarchy_and_person_certificate_print_in_openssl(env: CaEnv, tmp_path: Path) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.SM2)
    csr = _openssl_csr(tmp_path, "sm2", "/C=CN/O=测试机构/OU=信息中心/CN=张三")
    result = env.ca.issue(
        IssueRequest(sub.id, "person", csr=csr, san=["email:zhangsan@example.cn"])
    )
    ee = write(tmp_path / "ee.pem", result.certificate_pem)
    text = run_openssl("x509", "-in", ee, "-text", "-noout", "-nameopt", "utf8")
    assert "Subject: C=CN, O=测试机构, OU=信息中心, CN=张三" in text
    assert f"Issuer: C=CN, O=Trust Service, CN={sub.name}" in text
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert "ASN1 OID: SM2" in text
    for line in (
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature, Non Repudiation",
        "TLS Web Client Authentication, E-mail Protection",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "email:zhangsan@example.cn",
        f"URI:http://ca.example.cn/crl/{sub.id}.crl",
        "OCSP - URI:http://ca.example.cn/ocsp",
        f"CA Issuers - URI:http://ca.example.cn/v1/cas/{sub.id}/certificate",
        "Policy: X509v3 Any Policy",
    ):
        assert line in text, line
    serial = run_openssl("x509", "-in", ee, "-noout", "-serial").split("=")[1].strip()
    assert int(serial, 16) == int(result.serial_hex, 16)
    leaf = load_certificate(result.certificate_der)  # SKI: SHA-1 of the key bits (method 1)
    assert leaf.key_identifier == key_identifier(leaf.public_key)
    assert leaf.key_identifier.hex(":").upper() in text

    sub_text = run_openssl(
        "x509",
        "-in",
        write(tmp_path / "sub.pem", sub.certificate_pem),
        "-text",
        "-noout",
        "-nameopt",
        "utf8",
    )
    assert "CA:TRUE, pathlen:0" in sub_text
    assert "Certificate Sign, CRL Sign" in sub_text
    root_text = run_openssl(
        "x509",
        "-in",
        write(tmp_path / "root.pem", root.certificate_pem),
        "-text",
        "-noout",
        "-nameopt",
        "utf8",
    )
    assert "CA:TRUE" in root_text and "CRL Distribution" not in root_text

    # OpenSSL 3.0 applies -vfyopt distid to the target certificate only (never to CAs above
    # it), so each SM2 link is checked as its own target.
    assert "OK" in run_openssl(
        "verify", "-vfyopt", DISTID, "-CAfile", tmp_path / "root.pem", tmp_path / "sub.pem"
    )
    assert "OK" in run_openssl(
        "verify", "-vfyopt", DISTID, "-partial_chain", "-CAfile", tmp_path / "sub.pem", ee
    )
    # And our own verifier walks the whole chain (Z over the issuer key, default ID).
    chain = load_certificates(result.chain_pem.encode())
    verify_certificate(load_certificate(result.certificate_der), chain[0])
    verify_certificate(chain[0], chain[1])
    verify_certificate(chain[1], chain[1])


@pytest.mark.openssl_cli
@pytest.mark.parametrize("algorithm", ["ec", "rsa"])
def test_ecdsa_and_rsa_csrs_and_openssl_verify(env: CaEnv, tmp_path: Path, algorithm: str) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    csr = _openssl_csr(
        tmp_path,
        algorithm,
        "/C=CN/O=某公司/CN=www.example.cn",
        "-addext",
        "subjectAltName=DNS:www.example.cn,IP:10.0.0.1",
    )
    result = env.ca.issue(IssueRequest(sub.id, "server", csr=csr))
    ee = write(tmp_path / "ee.pem", result.certificate_pem)
    text = run_openssl("x509", "-in", ee, "-text", "-noout", "-nameopt", "utf8")
    assert "Signature Algorithm: ecdsa-with-SHA256" in text
    assert "DNS:www.example.cn, IP Address:10.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    out = run_openssl(
        "verify",
        "-CAfile",
        write(tmp_path / "root.pem", root.certificate_pem),
        "-untrusted",
        write(tmp_path / "chain.pem", result.chain_pem),
        ee,
    )
    assert out.strip().endswith("OK")


def test_rsa_ca(env: CaEnv) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.RSA_2048)
    key = generate(KeyAlgorithm.ECDSA_P256)
    result = env.ca.issue(
        IssueRequest(sub.id, "tsa", public_key=key.public_bytes_spki(), subject={"CN": "TSA"})
    )
    cert = load_certificate(result.certificate_der)
    assert cert["signature_algorithm"]["algorithm"].native == "sha256_rsa"
    verify_certificate(cert, load_certificate(sub.certificate_pem.encode()))
    eku = next(
        e
        for e in cert["tbs_certificate"]["extensions"]
        if e["extn_id"].native == "extended_key_usage"
    )
    assert eku["critical"].native is True and eku["extn_value"].native == ["time_stamping"]


def test_csr_with_bad_signature_is_refused(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    key = generate(KeyAlgorithm.SM2)
    good = python_csr(key, {"common_name": "张三"})
    env.ca.issue(IssueRequest(sub.id, "person", csr=good))
    request = asn1_csr.CertificationRequest.load(good)
    signature = bytearray(request["signature"].native)
    signature[10] ^= 1
    bad = asn1_csr.CertificationRequest(
        {
            "certification_request_info": request["certification_request_info"],
            "signature_algorithm": request["signature_algorithm"],
            "signature": bytes(signature),
        }
    ).dump()
    with pytest.raises(CsrSignatureInvalid) as info:
        env.ca.issue(IssueRequest(sub.id, "person", csr=bad))
    assert info.value.code == "csr_signature_invalid"
    # A CSR signed without Z (or with another ID) is no proof of possession either.
    other_id = python_csr(key, {"common_name": "张三"}, signer_id=b"other-id")
    with pytest.raises(CsrSignatureInvalid):
        env.ca.issue(IssueRequest(sub.id, "person", csr=other_id))
    assert env.ca.list_certificates(profile="person").__len__() == 1


def test_profile_rules(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    sm2 = generate(KeyAlgorithm.SM2).public_bytes_spki()
    rsa = generate(KeyAlgorithm.RSA_2048).public_bytes_spki()
    with pytest.raises(ProfileKeyNotAllowed) as e1:
        env.ca.issue(IssueRequest(sub.id, "encryption", public_key=rsa, subject={"CN": "x"}))
    assert e1.value.code == "profile_key_not_allowed"
    with pytest.raises(ProfileSubjectInvalid):  # organization needs its credit code
        env.ca.issue(
            IssueRequest(
                sub.id,
                "organization",
                public_key=sm2,
                subject={"C": "CN", "O": "某公司", "CN": "某公司"},
            )
        )
    with pytest.raises(ProfileSubjectInvalid):  # wrong check character
        env.ca.issue(
            IssueRequest(
                sub.id,
                "organization",
                public_key=sm2,
                subject={
                    "C": "CN",
                    "O": "某公司",
                    "CN": "某公司",
                    "organizationIdentifier": USCC[:-1] + "4",
                },
            )
        )
    with pytest.raises(ProfileSubjectInvalid):  # attribute the profile does not allow
        env.ca.issue(
            IssueRequest(
                sub.id,
                "server",
                public_key=sm2,
                subject={"CN": "a", "GN": "x"},
                san=["dns:a.example"],
            )
        )
    with pytest.raises(ProfileSanInvalid):  # server needs a DNS or IP name
        env.ca.issue(IssueRequest(sub.id, "server", public_key=sm2, subject={"CN": "a"}))
    with pytest.raises(ProfileSanInvalid):  # person takes email names only
        env.ca.issue(
            IssueRequest(
                sub.id, "person", public_key=sm2, subject={"CN": "a"}, san=["dns:a.example"]
            )
        )
    with pytest.raises(ProfileValidityTooLong) as e2:
        env.ca.issue(
            IssueRequest(
                sub.id,
                "server",
                public_key=sm2,
                subject={"CN": "a"},
                san=["dns:a.example"],
                validity_days=399,
            )
        )
    assert e2.value.code == "profile_validity_too_long"
    with pytest.raises(BadRequest):
        env.ca.issue(IssueRequest(sub.id, "person"))
    org = env.ca.issue(
        IssueRequest(
            sub.id,
            "organization",
            public_key=sm2,
            subject={"C": "CN", "O": "某公司", "CN": "某公司", "organizationIdentifier": USCC},
        )
    )
    assert load_certificate(org.certificate_der).subject.native["organization_identifier"] == USCC


def test_validity_is_clipped_to_the_issuer(sqlite_url: str) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    env = make_env(sqlite_url, clock)
    root = env.ca.create_ca(CreateCaRequest("root", validity_days=400))
    sub = env.ca.create_ca(CreateCaRequest("sub", parent_id=root.id, validity_days=3650))
    assert sub.not_after == root.not_after
    clock.advance(timedelta(days=300))
    key = generate(KeyAlgorithm.SM2).public_bytes_spki()
    result = env.ca.issue(IssueRequest(sub.id, "person", public_key=key, subject={"CN": "a"}))
    assert result.not_after == sub.not_after
    assert result.not_after - result.not_before == timedelta(days=100)


def test_renew_keeps_the_key_and_rekey_changes_it(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    key = generate(KeyAlgorithm.SM2)
    first = env.ca.issue(
        IssueRequest(
            sub.id,
            "person",
            public_key=key.public_bytes_spki(),
            subject={"C": "CN", "CN": "李四"},
            san=["email:li@example.cn"],
        )
    )
    renewed = env.ca.renew(first.serial_hex)
    old, new = load_certificate(first.certificate_der), load_certificate(renewed.certificate_der)
    assert new.public_key.dump() == old.public_key.dump()
    assert new.subject == old.subject and new.serial_number != old.serial_number
    assert env.ca.get_certificate(renewed.serial_hex).replaces == first.serial_hex
    other = generate(KeyAlgorithm.SM2)
    rekeyed = env.ca.rekey(first.serial_hex, csr=python_csr(other, {"common_name": "ignored"}))
    cert = load_certificate(rekeyed.certificate_der)
    assert cert.public_key.dump() == other.public_bytes_spki()
    assert cert.subject == old.subject
    assert cert.subject_alt_name_value.native == ["li@example.cn"]


def test_ocsp_and_encryption_profiles(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    enc = env.ca.issue(
        IssueRequest(
            sub.id,
            "encryption",
            public_key=generate(KeyAlgorithm.SM2).public_bytes_spki(),
            subject={"CN": "张三 enc"},
        )
    )
    cert = load_certificate(enc.certificate_der)
    assert cert.key_usage_value.native == {"key_encipherment", "data_encipherment", "key_agreement"}
    responder = env.ca.ensure_ocsp_signer(sub.id)
    ocsp_cert = responder.signer_certificate
    assert ocsp_cert.extended_key_usage_value.native == ["ocsp_signing"]
    assert ocsp_cert.ocsp_no_check_value is not None
    assert env.ca.ensure_ocsp_signer(sub.id).signer.key_id == responder.signer.key_id


def test_chinese_subject_is_utf8(env: CaEnv) -> None:
    _, sub = hierarchy(env, KeyAlgorithm.SM2)
    result = env.ca.issue(
        IssueRequest(
            sub.id,
            "person",
            public_key=generate(KeyAlgorithm.SM2).public_bytes_spki(),
            subject={"C": "CN", "CN": "王五"},
        )
    )
    cert = load_certificate(pem.unarmor(result.certificate_pem.encode())[2])
    kinds = {atv["type"].native: atv["value"].name for rdn in cert.subject.chosen for atv in rdn}
    assert kinds == {"country_name": "printable_string", "common_name": "utf8_string"}
    assert cert.subject.native["common_name"] == "王五"
