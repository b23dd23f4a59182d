"""PathValidator and validate_certificate: third-party SM2 chains, pyca-built ECDSA/RSA
chains with CRLs and OCSP, and the ETSI sub-indication of each failure."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from tests.validation_support import (
    T0,
    PycaPki,
    pyca_crl,
    pyca_ocsp,
    pyca_pki,
    sm2_cert,
    sm2_crl,
    vector_certs,
)
from trust.clock import FakeClock
from trust.validation import (
    CheckName,
    CheckStatus,
    HintCode,
    Indication,
    PathRequest,
    PathValidator,
    RevocationMode,
    SubIndication,
    validate_certificate,
)
from trust.validation.report import RevocationSource, RevocationStatus

INSIDE = T0  # inside the validity of every Tongsuo and gmssl.cn certificate used


@pytest.fixture(scope="module")
def tongsuo():
    root, sub = vector_certs("tongsuo_sm2_chain-ca.crt")
    return {
        "root": root,
        "sub": sub,
        "sign": vector_certs("tongsuo_sm2_client_sign.crt")[0],
        "enc": vector_certs("tongsuo_sm2_client_enc.crt")[0],
        "expired": vector_certs("tongsuo_sm2_server_sign_expire.crt")[0],
    }


@pytest.mark.parametrize("leaf", ["sign", "enc"])
def test_tongsuo_dual_certificates_validate(tongsuo, leaf):
    report = validate_certificate(
        tongsuo[leaf], [tongsuo["sub"]], anchors=[tongsuo["root"]], at=INSIDE
    )
    assert report.indication is Indication.TOTAL_PASSED
    assert [c.subject.split(",")[0] for c in report.chain] == [
        f"CN=client {leaf}",
        "CN=sub ca",
        "CN=root ca",
    ]
    assert report.chain[-1].trust_anchor and not report.chain[0].trust_anchor
    # No CRL or OCSP for these certificates: soft-fail passes, but says it did not check.
    assert report.check(CheckName.REVOCATION).status is CheckStatus.NOT_PERFORMED


def test_tongsuo_key_usage_distinguishes_the_dual_certificates(tongsuo):
    common = {"anchors": [tongsuo["root"]], "at": INSIDE}
    sign = validate_certificate(
        tongsuo["sign"], [tongsuo["sub"]], key_usage={"key_encipherment"}, **common
    )
    enc = validate_certificate(
        tongsuo["enc"], [tongsuo["sub"]], key_usage={"key_encipherment"}, **common
    )
    assert enc.indication is Indication.TOTAL_PASSED
    assert sign.indication is Indication.INDETERMINATE
    assert sign.sub_indication is SubIndication.CHAIN_CONSTRAINTS_FAILURE


def test_expired_certificate_is_expired(tongsuo):
    report = validate_certificate(
        tongsuo["expired"], [tongsuo["sub"]], anchors=[tongsuo["root"]], at=INSIDE
    )
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.EXPIRED,
    )
    assert "server sign" in report.check(CheckName.CERTIFICATE_VALIDITY).message
    # Validated at a time inside its validity (2000), the same certificate passes.
    past = validate_certificate(
        tongsuo["expired"],
        [tongsuo["sub"]],
        anchors=[tongsuo["root"]],
        at=T0.replace(year=2000, month=6),
    )
    # ... except that the CAs were only issued in 2023.
    assert past.sub_indication is SubIndication.NOT_YET_VALID


def test_expired_signing_certificate_is_out_of_bounds_for_a_signature(tongsuo):
    result = PathValidator([tongsuo["root"]]).validate(
        PathRequest(tongsuo["expired"], [tongsuo["sub"]], at=INSIDE, for_signature=True)
    )
    assert result.failure is not None
    assert result.failure.sub_indication is SubIndication.OUT_OF_BOUNDS_NO_POE
    assert result.failure.status is CheckStatus.INDETERMINATE


def test_missing_intermediate_and_unknown_root(tongsuo):
    missing = validate_certificate(tongsuo["sign"], anchors=[tongsuo["root"]], at=INSIDE)
    gmssl_root = vector_certs("gmssl_cn_certificate_chain.p7b.pem")[0]
    unknown = validate_certificate(
        tongsuo["sign"], [tongsuo["sub"], tongsuo["root"]], anchors=[gmssl_root], at=INSIDE
    )
    no_anchor = validate_certificate(tongsuo["sign"], [tongsuo["sub"]], at=INSIDE)
    for report in (missing, unknown, no_anchor):
        assert report.indication is Indication.INDETERMINATE
        assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
        assert report.check(CheckName.CERTIFICATE_VALIDITY).status is CheckStatus.NOT_PERFORMED


def test_noza_certificate_fails_its_signature_with_a_hint():
    root = vector_certs("tongsuo_sm2-noza-root-cert.pem")[0]
    leaf = vector_certs("tongsuo_sm2-noza-cert.pem")[0]
    report = validate_certificate(leaf, anchors=[root], at=INSIDE)
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SIG_CRYPTO_FAILURE,
    )
    assert "without Za" in report.check(CheckName.CERTIFICATE_CHAIN).message
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITHOUT_Z]
    assert "without Za" in report.hints[0].details["certificate"]


def test_tongsuo_sm2_certificate_with_z_validates():
    root = vector_certs("tongsuo_sm2-root-cert.pem")[0]
    leaf = vector_certs("tongsuo_sm2-cert.pem")[0]
    report = validate_certificate(leaf, anchors=[root], at=INSIDE)
    assert report.indication is Indication.TOTAL_PASSED
    assert report.hints == ()


def test_gmssl_cn_chain_validates():
    root, middle = vector_certs("gmssl_cn_certificate_chain.p7b.pem")
    report = validate_certificate(middle, anchors=[root], at=INSIDE)
    assert report.indication is Indication.TOTAL_PASSED
    assert report.chain[0].subject.startswith("CN=MiddleCA for Test")


def test_current_time_comes_from_the_clock(tongsuo):
    clock = FakeClock(T0.replace(year=2150))
    report = validate_certificate(
        tongsuo["sign"], [tongsuo["sub"]], anchors=[tongsuo["root"]], clock=clock
    )
    assert report.validation_time == clock.now()
    assert report.time_source == "current"
    assert report.sub_indication is SubIndication.EXPIRED


# --- ECDSA / RSA with CRL and OCSP ---------------------------------------------------


@pytest.fixture(scope="module", params=["ecdsa", "rsa"])
def pki(request) -> PycaPki:
    return pyca_pki(request.param, revocation_urls=True)


REVOKED_AT = T0 + timedelta(days=100)


def _revoked_crl(pki: PycaPki) -> bytes:
    return pyca_crl(pki.sub, [(pki.leaf, REVOKED_AT)], this_update=REVOKED_AT + timedelta(days=1))


def _root_crl(pki: PycaPki, this_update) -> bytes:
    return pyca_crl(pki.root, this_update=this_update)


def test_crl_revoking_the_leaf_is_revoked(pki):
    at = REVOKED_AT + timedelta(days=2)
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=at,
        crls=[_revoked_crl(pki), _root_crl(pki, at)],
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
    )
    leaf_evidence = [
        e for e in report.revocation if e.certificate_subject.startswith("CN=Test Leaf")
    ]
    assert leaf_evidence[0].status is RevocationStatus.REVOKED
    assert leaf_evidence[0].revocation_time == REVOKED_AT
    assert leaf_evidence[0].revocation_reason == "key_compromise"


def test_before_the_revocation_the_certificate_passes_with_a_warning(pki):
    """ETSI past validation: at a time before the revocation the certificate was valid; a
    CRL published later is what proves the revocation came after that time."""
    at = REVOKED_AT - timedelta(days=10)
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=at,
        crls=[_revoked_crl(pki), _root_crl(pki, at)],
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert report.indication is Indication.TOTAL_PASSED
    assert report.check(CheckName.REVOCATION).status is CheckStatus.PASSED
    assert [w.code for w in report.warnings] == ["revocation.revoked_after_validation_time"]


def test_revoked_signing_certificate_without_proof_is_revoked_no_poe(pki):
    at = REVOKED_AT + timedelta(days=2)
    result = PathValidator([pki.root.der]).validate(
        PathRequest(
            pki.leaf.der,
            [pki.sub.der],
            at=at,
            crls=[_revoked_crl(pki), _root_crl(pki, at)],
            revocation_mode=RevocationMode.REQUIRE,
            for_signature=True,
        )
    )
    assert result.failure is not None
    assert result.failure.sub_indication is SubIndication.REVOKED_NO_POE
    assert result.failure.certificate is not None
    assert result.failure.certificate.subject.startswith("CN=Test Leaf")


def test_revoked_ca_for_a_signature_is_revoked_ca_no_poe(pki):
    at = REVOKED_AT + timedelta(days=2)
    root_crl = pyca_crl(pki.root, [(pki.sub, REVOKED_AT)], this_update=at)
    result = PathValidator([pki.root.der]).validate(
        PathRequest(
            pki.leaf.der,
            [pki.sub.der],
            at=at,
            crls=[root_crl, pyca_crl(pki.sub, this_update=at)],
            revocation_mode=RevocationMode.REQUIRE,
            for_signature=True,
        )
    )
    assert result.failure is not None
    assert result.failure.sub_indication is SubIndication.REVOKED_CA_NO_POE


def test_ocsp_evidence_is_reported(pki):
    at = T0 + timedelta(days=5)
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=at,
        ocsps=[pyca_ocsp(pki.sub, pki.leaf, this_update=at)],
        crls=[_root_crl(pki, at)],
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert report.indication is Indication.TOTAL_PASSED
    sources = {(e.certificate_subject.split(",")[0], e.source) for e in report.revocation}
    assert sources == {
        ("CN=Test Leaf", RevocationSource.OCSP),
        ("CN=Test Sub CA", RevocationSource.CRL),
    }
    assert all(e.status is RevocationStatus.GOOD for e in report.revocation)


def test_ocsp_revoked(pki):
    at = REVOKED_AT + timedelta(days=1)
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=at,
        ocsps=[pyca_ocsp(pki.sub, pki.leaf, this_update=at, revoked_at=REVOKED_AT)],
        crls=[_root_crl(pki, at)],
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert report.sub_indication is SubIndication.REVOKED


def test_required_revocation_data_missing_is_try_later(pki):
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=T0 + timedelta(days=5),
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.TRY_LATER,
    )


def test_stale_crl_is_try_later_in_hard_fail(pki):
    at = T0 + timedelta(days=60)
    stale = pyca_crl(pki.sub, this_update=T0, next_update=T0 + timedelta(days=7))
    report = validate_certificate(
        pki.leaf.der,
        [pki.sub.der],
        anchors=[pki.root.der],
        at=at,
        crls=[stale],
        revocation_mode=RevocationMode.HARD_FAIL,
    )
    assert report.sub_indication is SubIndication.TRY_LATER


def test_tampered_leaf_signature_is_sig_crypto_failure(pki):
    der = bytearray(pki.leaf.der)
    der[-5] ^= 0x01  # inside the signature value
    report = validate_certificate(bytes(der), [pki.sub.der], anchors=[pki.root.der], at=T0)
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert report.hints == ()  # SM2 diagnostics only


# --- SM2 CRLs go through the plug-in too ---------------------------------------------


def test_sm2_crl_verified_by_the_plugin():
    root = sm2_cert("SM2 Root", ca=True)
    leaf = sm2_cert("SM2 Leaf", root)
    at = T0 + timedelta(days=10)
    crl_der = sm2_crl(root, [(leaf, T0 + timedelta(days=3))], at)
    validator = PathValidator([root.cert])
    result = validator.validate(
        PathRequest(leaf.cert, at=at, crls=[crl_der], revocation_mode=RevocationMode.REQUIRE)
    )
    assert result.failure is not None and result.failure.sub_indication is SubIndication.REVOKED
    good = validator.validate(
        PathRequest(
            leaf.cert,
            at=at,
            crls=[sm2_crl(root, [], at)],
            revocation_mode=RevocationMode.REQUIRE,
        )
    )
    assert good.ok and good.revocation[0].status is RevocationStatus.GOOD


def test_sm2_crl_with_a_bad_signature_is_not_evidence():
    root = sm2_cert("SM2 Root", ca=True)
    leaf = sm2_cert("SM2 Leaf", root)
    other = sm2_cert("SM2 Root", ca=True)  # same name, different key
    at = T0 + timedelta(days=10)
    result = PathValidator([root.cert]).validate(
        PathRequest(
            leaf.cert,
            at=at,
            crls=[sm2_crl(other, [(leaf, T0)], at)],
            revocation_mode=RevocationMode.REQUIRE,
        )
    )
    assert result.failure is not None
    assert result.failure.sub_indication is SubIndication.TRY_LATER
    assert result.revocation == ()


def test_sm2_certificate_signed_with_another_id_gets_a_hint():
    root = sm2_cert("SM2 Root", ca=True)
    leaf = sm2_cert("SM2 Leaf", root, signer_id=b"")
    report = validate_certificate(leaf.cert, anchors=[root.cert], at=T0 + timedelta(days=1))
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    assert [h.code for h in report.hints] == [HintCode.VERIFIES_WITH_EMPTY_SIGNER_ID]


# --- the sync wrapper ----------------------------------------------------------------


def test_sync_validate_inside_a_running_loop_and_from_threads(tongsuo):
    validator = PathValidator([tongsuo["root"]])
    request = PathRequest(tongsuo["sign"], [tongsuo["sub"]], at=INSIDE)

    async def from_async_code():
        return validator.validate(request), await validator.validate_async(request)

    blocking, awaited = asyncio.run(from_async_code())
    assert blocking.ok and awaited.ok

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(validator.validate(request).ok))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_results_are_reused_within_a_second_and_new_inputs_are_seen(pki):
    """The result cache: same inputs a moment later reuse the result (with the new time);
    another CRL is another key; past the window the path is validated again."""
    expiry = pki.leaf.cert.not_valid_after_utc
    clock = FakeClock(expiry - timedelta(milliseconds=600))
    validator = PathValidator([pki.root.der], clock=clock)
    issued = expiry - timedelta(days=1)
    good = [pyca_crl(pki.sub, this_update=issued), _root_crl(pki, issued)]
    revoked = [
        pyca_crl(pki.sub, [(pki.leaf, REVOKED_AT)], this_update=issued),
        _root_crl(pki, issued),
    ]

    def run(crls):
        return validator.validate(
            PathRequest(pki.leaf.der, [pki.sub.der], crls=crls, revocation_mode="soft-fail")
        )

    first = run(good)
    assert first.ok
    clock.set(expiry - timedelta(milliseconds=100))
    again = run(good)
    assert again.ok and again.validation_time == clock.now() != first.validation_time
    assert run(revoked).failure.sub_indication is SubIndication.REVOKED
    clock.set(expiry + timedelta(seconds=2))
    assert run(good).failure.sub_indication is SubIndication.EXPIRED
