"""verify_raw_signature (GM/T 0029 VerifySignedData) and the SM2 diagnostics."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from tests.validation_support import T0, pyca_crl, pyca_pki, sm2_cert, vector_certs
from trust.errors import BadRequest
from trust.keys import KeyAlgorithm, SM2PrivateKey, generate, load_private_key
from trust.sm2.curve import compute_e
from trust.sm2.encoding import CipherOrder, cipher_der_to_raw, der_to_raw
from trust.sm3 import sm3
from trust.validation import (
    CheckName,
    CheckStatus,
    CiphertextForm,
    HintCode,
    Indication,
    SignatureEncoding,
    SubIndication,
    diagnose_sm2_ciphertext,
    diagnose_sm2_signature,
    render_text,
    verify_raw_signature,
)

DATA = b"GM/T 0029 VerifySignedData test message"
KEYS = Path(__file__).parent / "vectors" / "tongsuo_sm2_keys.json"


@pytest.fixture(scope="module")
def tongsuo():
    """Tongsuo's published test key and its certificate sm2-cert.pem (issued by sm2-root)."""
    entry = next(k for k in json.loads(KEYS.read_text())["keys"] if k["name"] == "sm2.key")
    key = load_private_key(entry["pem"].encode())
    return {
        "key": key,
        "cert": vector_certs("tongsuo_sm2-cert.pem")[0],
        "root": vector_certs("tongsuo_sm2-root-cert.pem")[0],
    }


def test_level_0_good_signature_passes_and_says_what_it_did_not_check(tongsuo):
    report = verify_raw_signature(tongsuo["cert"], tongsuo["key"].sign(DATA), data=DATA)
    assert report.indication is Indication.TOTAL_PASSED
    assert report.signer is not None and "SM2-CA" in report.signer.subject
    assert {c.name for c in report.not_performed} == {
        "certificate_chain",
        "certificate_validity",
        "revocation",
        "key_usage",
    }
    text = render_text(report)
    assert "TOTAL_PASSED" in text and "verify_level 0" in text


def test_tampered_data_is_sig_crypto_failure(tongsuo):
    report = verify_raw_signature(tongsuo["cert"], tongsuo["key"].sign(DATA), data=DATA + b"!")
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SIG_CRYPTO_FAILURE,
    )
    assert report.hints == ()


def test_signature_made_with_empty_id_fails_with_a_hint(tongsuo):
    signature = tongsuo["key"].sign(DATA, signer_id=b"")
    report = verify_raw_signature(tongsuo["cert"], signature, data=DATA)
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITH_EMPTY_SIGNER_ID]
    # With the ID it was made with, it verifies.
    assert (
        verify_raw_signature(tongsuo["cert"], signature, data=DATA, signer_id=b"").indication
        is Indication.TOTAL_PASSED
    )


def test_signature_with_default_id_when_another_was_claimed(tongsuo):
    signature = tongsuo["key"].sign(DATA)
    report = verify_raw_signature(tongsuo["cert"], signature, data=DATA, signer_id=b"alice")
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITH_DEFAULT_SIGNER_ID]


def test_signature_without_z_gets_a_hint(tongsuo):
    signature = tongsuo["key"].sign_digest(sm3(DATA))
    report = verify_raw_signature(tongsuo["cert"], signature, data=DATA)
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITHOUT_Z]


def test_raw_r_s_is_a_format_failure_unless_declared(tongsuo):
    raw = der_to_raw(tongsuo["key"].sign(DATA))
    report = verify_raw_signature(tongsuo["cert"], raw, data=DATA)
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )
    assert [h.code for h in report.hints] == [HintCode.SIGNATURE_IS_RAW]
    declared = verify_raw_signature(
        tongsuo["cert"], raw, data=DATA, signature_encoding=SignatureEncoding.RAW
    )
    assert declared.indication is Indication.TOTAL_PASSED


def test_der_given_where_raw_declared(tongsuo):
    report = verify_raw_signature(
        tongsuo["cert"],
        tongsuo["key"].sign(DATA),
        data=DATA,
        signature_encoding=SignatureEncoding.RAW,
    )
    assert report.sub_indication is SubIndication.FORMAT_FAILURE
    assert [h.code for h in report.hints] == [HintCode.SIGNATURE_IS_DER]


def test_raw_and_empty_id_together(tongsuo):
    raw = der_to_raw(tongsuo["key"].sign(DATA, signer_id=b""))
    report = verify_raw_signature(tongsuo["cert"], raw, data=DATA)
    assert {h.code for h in report.hints} == {
        HintCode.SIGNATURE_IS_RAW,
        HintCode.VERIFIES_WITH_EMPTY_SIGNER_ID,
    }


def test_digest_input_is_the_e_value(tongsuo):
    cert_key = tongsuo["key"].public_key()
    e = compute_e(cert_key.point(), DATA)
    report = verify_raw_signature(tongsuo["cert"], tongsuo["key"].sign(DATA), digest=e)
    assert report.indication is Indication.TOTAL_PASSED
    bad = verify_raw_signature(tongsuo["cert"], tongsuo["key"].sign(DATA), digest=sm3(DATA))
    assert bad.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


def test_signature_by_another_supplied_certificate_gets_a_hint(tongsuo):
    other = sm2_cert("Someone Else")
    signature = other.key.sign(DATA)
    report = verify_raw_signature(tongsuo["cert"], signature, data=DATA, intermediates=[other.cert])
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITH_OTHER_CERTIFICATE]
    assert "Someone Else" in report.hints[0].details["certificate"]


def test_level_1_and_2_with_the_tongsuo_chain(tongsuo):
    signature = tongsuo["key"].sign(DATA)
    common = {"data": DATA, "anchors": [tongsuo["root"]], "at": T0}
    level1 = verify_raw_signature(tongsuo["cert"], signature, verify_level=1, **common)
    assert level1.indication is Indication.TOTAL_PASSED
    assert level1.check(CheckName.CERTIFICATE_CHAIN).status is CheckStatus.PASSED
    assert level1.check(CheckName.KEY_USAGE).status is CheckStatus.PASSED
    assert "verify_level 1" in level1.check(CheckName.REVOCATION).message
    assert level1.proven_signing_time == T0 and level1.time_source == "proven"
    # Level 2 requires revocation data by default; there is none for these certificates.
    level2 = verify_raw_signature(tongsuo["cert"], signature, verify_level=2, **common)
    assert (level2.indication, level2.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.TRY_LATER,
    )


def test_expired_or_revoked_signer_is_indeterminate_without_proof():
    pki = pyca_pki("ecdsa", revocation_urls=True)
    signature = pki.leaf.key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    revoked_at = T0 + timedelta(days=30)
    crls = [
        pyca_crl(pki.sub, [(pki.leaf, revoked_at)], this_update=revoked_at + timedelta(days=1)),
        pyca_crl(pki.root, this_update=revoked_at + timedelta(days=1)),
    ]
    common = {
        "data": DATA,
        "anchors": [pki.root.der],
        "intermediates": [pki.sub.der],
        "crls": crls,
        "verify_level": 2,
    }
    after = verify_raw_signature(
        pki.leaf.der, signature, at=revoked_at + timedelta(days=2), **common
    )
    assert (after.indication, after.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_NO_POE,
    )
    before = verify_raw_signature(
        pki.leaf.der, signature, at=revoked_at - timedelta(days=2), **common
    )
    assert before.indication is Indication.TOTAL_PASSED
    assert before.warnings[0].code == "revocation.revoked_after_validation_time"
    late = verify_raw_signature(
        pki.leaf.der,
        signature,
        at=T0 + timedelta(days=4000),
        **{**common, "verify_level": 1},
    )
    assert late.sub_indication is SubIndication.OUT_OF_BOUNDS_NO_POE


def test_rsa_level_0():
    pki = pyca_pki("rsa")
    signature = pki.leaf.key.sign(DATA, padding.PKCS1v15(), hashes.SHA256())
    assert verify_raw_signature(pki.leaf.der, signature, data=DATA).indication is (
        Indication.TOTAL_PASSED
    )
    assert verify_raw_signature(pki.leaf.der, signature, data=DATA + b"x").sub_indication is (
        SubIndication.SIG_CRYPTO_FAILURE
    )


def test_bad_arguments_are_trust_errors(tongsuo):
    signature = tongsuo["key"].sign(DATA)
    with pytest.raises(BadRequest):
        verify_raw_signature(tongsuo["cert"], signature)
    with pytest.raises(BadRequest):
        verify_raw_signature(tongsuo["cert"], signature, data=DATA, digest=sm3(DATA))
    with pytest.raises(BadRequest):
        verify_raw_signature(tongsuo["cert"], signature, data=DATA, verify_level=3)


# --- diagnostics directly ------------------------------------------------------------


def test_a_signature_that_verifies_has_no_hints_and_garbage_has_none_either():
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    public = key.public_key()
    assert diagnose_sm2_signature(public, key.sign(DATA), message=DATA) == ()
    assert diagnose_sm2_signature(public, b"\x30\x00", message=DATA) == ()
    assert diagnose_sm2_signature(public, bytes(64), message=DATA) == ()


@pytest.mark.parametrize(
    ("order", "prefixed", "codes"),
    [
        (CipherOrder.C1C2C3, True, [HintCode.CIPHERTEXT_IS_C1C2C3]),
        (CipherOrder.C1C3C2, False, [HintCode.CIPHERTEXT_C1_WITHOUT_04]),
        (
            CipherOrder.C1C2C3,
            False,
            [HintCode.CIPHERTEXT_IS_C1C2C3, HintCode.CIPHERTEXT_C1_WITHOUT_04],
        ),
    ],
)
def test_ciphertext_order_confusion(order, prefixed, codes):
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    der = key.public_key().encrypt(b"secret session key")
    raw = cipher_der_to_raw(der, order, prefixed)
    hints = diagnose_sm2_ciphertext(key, raw, expected=CiphertextForm.C1C3C2)
    assert [h.code for h in hints] == codes
    assert all(b"secret" not in h.message.encode() for h in hints)


def test_ciphertext_der_given_where_raw_expected_and_nothing_for_garbage():
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    der = key.public_key().encrypt(b"x" * 40)
    assert [h.code for h in diagnose_sm2_ciphertext(key, der, expected=CiphertextForm.C1C3C2)] == [
        HintCode.CIPHERTEXT_IS_DER
    ]
    assert diagnose_sm2_ciphertext(key, der, expected=CiphertextForm.DER) == ()
    assert diagnose_sm2_ciphertext(key, b"\x04" + bytes(200)) == ()
