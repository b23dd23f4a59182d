"""The GM/T 0006 OIDs registered by trust.oids name the algorithms of third-party samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, keys, pem, x509

from trust import oids

INTEROP = Path("/work/shared/interop")
CERT_FILES = sorted(INTEROP.glob("Tongsuo/*.pem")) + sorted(INTEROP.glob("Tongsuo/sm2/*.crt"))
PKCS7_DIR = INTEROP / "gmsm" / "pkcs7"


def _pems(path: Path) -> list[tuple[str, bytes]]:
    return [(kind, der) for kind, _, der in pem.unarmor(path.read_bytes(), multiple=True)]


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"interop corpus not present: {path}")


def _assert_sm2_certificate(cert: x509.Certificate) -> None:
    sig = cert["signature_algorithm"]
    assert sig["algorithm"].dotted == oids.SM3_WITH_SM2
    assert sig["algorithm"].native == "sm3_sm2"
    assert sig.signature_algo == "sm2"
    assert sig.hash_algo == "sm3"
    spki = cert.public_key
    assert spki.curve == ("named", oids.SM2_CURVE_NAME)
    assert spki.bit_size == 256
    assert len(spki["public_key"].native) == 65
    cert.native  # the whole structure parses


@pytest.mark.parametrize("path", CERT_FILES, ids=lambda p: p.name)
def test_tongsuo_certificates(path: Path) -> None:
    blocks = _pems(path)
    assert blocks
    for kind, der in blocks:
        assert kind == "CERTIFICATE"
        _assert_sm2_certificate(x509.Certificate.load(der))


def test_tongsuo_sm2_key_algorithm_form() -> None:
    """Tongsuo's own test certs write the SM2 OID as the key algorithm, not id-ecPublicKey."""
    path = INTEROP / "Tongsuo" / "sm2-cert.pem"
    _need(path)
    cert = x509.Certificate.load(_pems(path)[0][1])
    assert cert.public_key["algorithm"]["algorithm"].dotted == oids.SM2_CURVE
    assert cert.public_key.algorithm == "sm2"


@pytest.mark.parametrize("name", ["gmcert_sign_cert.pem", "gmcert_enc_cert.pem"])
def test_gmsm_certificates(name: str) -> None:
    path = PKCS7_DIR / name
    _need(path)
    cert = x509.Certificate.load(_pems(path)[0][1])
    _assert_sm2_certificate(cert)
    assert cert.public_key["algorithm"]["algorithm"].dotted == oids.EC_PUBLIC_KEY


@pytest.mark.parametrize("name", ["gmcert_sign_key.pem", "gmcert_expected_enc_key.pem"])
def test_gmsm_private_keys(name: str) -> None:
    path = PKCS7_DIR / name
    _need(path)
    info = keys.PrivateKeyInfo.load(_pems(path)[0][1])
    assert info.algorithm == "ec"
    assert info.curve == ("named", oids.SM2_CURVE_NAME)


def test_gmssl_certificate_chain_p7b() -> None:
    path = PKCS7_DIR / "gmssl_cn_certificate_chain.p7b.pem"
    _need(path)
    info = cms.ContentInfo.load(_pems(path)[0][1])
    assert info["content_type"].native == "signed_data"
    certs = info["content"]["certificates"]
    assert len(certs) == 2
    for choice in certs:
        _assert_sm2_certificate(choice.chosen)


def test_gmcert_signed_and_enveloped_names() -> None:
    path = PKCS7_DIR / "gmcert_signed_enveloped.p7.pem"
    _need(path)
    info = cms.ContentInfo.load(_pems(path)[0][1])
    assert info["content_type"].dotted == oids.GM_CMS_SIGNED_AND_ENVELOPED_DATA
    assert info["content_type"].native == "sm2_signed_and_enveloped_data"
    content = info["content"]
    enc = content["encrypted_content_info"]["content_encryption_algorithm"]
    assert enc["algorithm"].native == "sm4"
    assert (enc.encryption_cipher, enc.encryption_mode, enc.key_length) == ("sm4", "cbc", 16)
    (signer,) = content["signer_infos"]
    assert signer["digest_algorithm"]["algorithm"].native == "sm3"
    assert signer["signature_algorithm"]["algorithm"].dotted == oids.SM2_SIGN
    assert signer["signature_algorithm"].signature_algo == "sm2"


@pytest.mark.parametrize("name", ["sadk_signed_attached.p7", "sadk_signed_detached.p7"])
def test_cfca_signed_data(name: str) -> None:
    path = INTEROP / "gmsm" / "cfca" / name
    _need(path)
    info = cms.ContentInfo.load(path.read_bytes())
    assert info["content_type"].native == "sm2_signed_data"
    signed = info["content"]
    assert signed["encap_content_info"]["content_type"].native == "sm2_data"
    (signer,) = signed["signer_infos"]
    assert signer["digest_algorithm"]["algorithm"].dotted == oids.SM3
    assert signer["signature_algorithm"].signature_algo == "sm2"
    assert signer["signature_algorithm"].hash_algo == "sm3"
    info.native


# --- building values with the registered names -----------------------------------


@pytest.mark.parametrize(
    ("cls", "name", "dotted"),
    [
        (algos.DigestAlgorithmId, "sm3", oids.SM3),
        (algos.HmacAlgorithmId, "sm3", oids.HMAC_SM3),
        (algos.SignedDigestAlgorithmId, "sm3_sm2", oids.SM3_WITH_SM2),
        (algos.SignedDigestAlgorithmId, "sm2", oids.SM2_SIGN),
        (algos.SignedDigestAlgorithmId, "sm3_rsa", oids.SM3_WITH_RSA),
        (algos.EncryptionAlgorithmId, "sm4_ecb", oids.SM4_ECB),
        (algos.EncryptionAlgorithmId, "sm4_cbc", oids.SM4_CBC),
        (algos.EncryptionAlgorithmId, "sm4_gcm", oids.SM4_GCM),
        (cms.KeyEncryptionAlgorithmId, "sm2_encrypt", oids.SM2_ENCRYPT),
        (keys.NamedCurve, "sm2p256v1", oids.SM2_CURVE),
        (cms.ContentType, "sm2_data", oids.GM_CMS_DATA),
        (cms.ContentType, "sm2_signed_data", oids.GM_CMS_SIGNED_DATA),
        (cms.ContentType, "sm2_enveloped_data", oids.GM_CMS_ENVELOPED_DATA),
        (cms.ContentType, "sm2_signed_and_enveloped_data", oids.GM_CMS_SIGNED_AND_ENVELOPED_DATA),
        (cms.ContentType, "sm2_encrypted_data", oids.GM_CMS_ENCRYPTED_DATA),
        (cms.ContentType, "sm2_key_agreement_info", oids.GM_CMS_KEY_AGREEMENT_INFO),
    ],
)
def test_names_round_trip(cls: type[core.ObjectIdentifier], name: str, dotted: str) -> None:
    value = cls(name)
    assert value.dotted == dotted
    assert cls.load(value.dump()).native == name
    assert cls.map(dotted) == name
    assert cls.unmap(name) == dotted


def test_sm4_parameters() -> None:
    iv = bytes(range(16))
    cbc = algos.EncryptionAlgorithm({"algorithm": "sm4_cbc", "parameters": iv})
    parsed = algos.EncryptionAlgorithm.load(cbc.dump())
    assert (parsed.encryption_mode, parsed.encryption_iv, parsed.encryption_block_size) == (
        "cbc",
        iv,
        16,
    )
    gcm = algos.EncryptionAlgorithm(
        {"algorithm": "sm4_gcm", "parameters": {"nonce": bytes(12), "icv_len": 16}}
    )
    parsed = algos.EncryptionAlgorithm.load(gcm.dump())
    assert (parsed.encryption_mode, parsed.encryption_iv) == ("gcm", bytes(12))
    assert parsed["parameters"]["icv_len"].native == 16


def test_unrelated_algorithms_still_work() -> None:
    sha = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    assert (sha.signature_algo, sha.hash_algo) == ("ecdsa", "sha256")
    aes = algos.EncryptionAlgorithm({"algorithm": "aes128_cbc", "parameters": bytes(16)})
    assert aes.encryption_cipher == "aes"
    with pytest.raises(ValueError):
        _ = algos.SignedDigestAlgorithm({"algorithm": "1.2.3.4"}).signature_algo


def test_names_table_covers_gm_arc_only() -> None:
    assert all(oid.startswith(oids.GM_ARC + ".") for oid in oids.NAMES)
    assert oids.NAMES[oids.SM3_WITH_SM2] == "sm3_sm2"
