"""Signature timestamps in CMS reports (proven signing time, revocation and expiry before
or after it) and time-stamp tokens on their own (verify_timestamp)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from tests.tsa_support import authority, migrated, request, tsa_chain
from tests.validation_support import (
    T0,
    PycaPki,
    pyca_cert,
    pyca_cms,
    pyca_crl,
    pyca_key,
    pyca_pki,
    pyca_tsa,
    stamp,
)
from timestamp import parse_response
from timestamp.checker import TokenChecker
from trust.clock import FakeClock
from trust.keys import KeyAlgorithm
from trust.validation import (
    CheckStatus,
    CmsCheck,
    Indication,
    RevocationMode,
    SubIndication,
    TimeSource,
    ValidationReport,
    render_text,
    verify_cms,
    verify_timestamp,
)

CONTENT = b"stamped content"
NOW = T0 + timedelta(days=400)
REVOKED_AT = T0 + timedelta(days=100)
ACCURACY = timedelta(seconds=1)  # pyca_tsa's: a token proves genTime + accuracy
CHECKER = TokenChecker()


@cache
def pki() -> PycaPki:
    return pyca_pki("ecdsa")


def stamped_at(when: object, der: bytes | None = None, **kwargs: object) -> bytes:
    p = pki()
    tsa, _ = pyca_tsa(p.sub, FakeClock(when), **kwargs)  # type: ignore[arg-type]
    return stamp(der if der is not None else pyca_cms(p.leaf, CONTENT), tsa)


def crls_revoking_leaf() -> list[bytes]:
    p = pki()
    issued = NOW - timedelta(days=1)
    return [
        pyca_crl(p.sub, ((p.leaf, REVOKED_AT),), this_update=issued),
        pyca_crl(p.root, this_update=issued),
    ]


def check(der: bytes, **kwargs: object) -> ValidationReport:
    p = pki()
    options: dict[str, object] = {
        "anchors": [p.root.der],
        "intermediates": [p.sub.der],
        "clock": FakeClock(NOW),
        "timestamp_checker": CHECKER,
    }
    options.update(kwargs)
    return verify_cms(der, **options)  # type: ignore[arg-type]


def test_timestamp_is_the_proven_signing_time() -> None:
    when = T0 + timedelta(days=50, microseconds=250)
    report = check(stamped_at(when))
    assert report.indication is Indication.TOTAL_PASSED, render_text(report)
    assert report.time_source is TimeSource.PROVEN
    assert report.proven_signing_time == report.validation_time == when + ACCURACY
    assert report.check(CmsCheck.TIMESTAMP).status is CheckStatus.PASSED
    (info,) = report.timestamps
    assert info.indication is Indication.TOTAL_PASSED and info.gen_time == when
    assert info.accuracy_microseconds == 1_000_000
    assert info.tsa is not None and "Test TSA" in info.tsa.subject


def test_signed_before_revocation_with_a_timestamp_passes() -> None:
    der = stamped_at(REVOKED_AT - timedelta(days=1))
    report = check(der, crls=crls_revoking_leaf(), revocation_mode=RevocationMode.REQUIRE)
    assert report.indication is Indication.TOTAL_PASSED, render_text(report)
    assert report.check("revocation").status is CheckStatus.PASSED
    assert "revocation.revoked_after_validation_time" in {w.code for w in report.warnings}
    assert any(e.status == "revoked" for e in report.revocation)


def test_timestamp_after_revocation_is_revoked_no_poe() -> None:
    der = stamped_at(REVOKED_AT + timedelta(days=1))
    report = check(der, crls=crls_revoking_leaf(), revocation_mode=RevocationMode.REQUIRE)
    assert report.check(CmsCheck.TIMESTAMP).status is CheckStatus.PASSED
    # The token proves existence after the revocation, not creation after it.
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_NO_POE,
    )


def test_without_a_timestamp_a_revoked_signer_is_revoked_no_poe() -> None:
    report = check(
        pyca_cms(pki().leaf, CONTENT),
        crls=crls_revoking_leaf(),
        revocation_mode=RevocationMode.REQUIRE,
    )
    assert report.sub_indication is SubIndication.REVOKED_NO_POE
    assert report.time_source is TimeSource.CURRENT


def _short_lived_signer() -> tuple[object, object]:
    p = pki()
    leaf = pyca_cert("Short Leaf", pyca_key("ecdsa"), p.sub, not_after=T0 + timedelta(days=100))
    return leaf, p


def test_expired_signer_with_a_timestamp_inside_validity_passes() -> None:
    leaf, _ = _short_lived_signer()
    der = pyca_cms(leaf, CONTENT)  # type: ignore[arg-type]
    plain = check(der)
    assert plain.sub_indication is SubIndication.OUT_OF_BOUNDS_NO_POE
    inside = check(stamped_at(T0 + timedelta(days=99), der))
    assert inside.indication is Indication.TOTAL_PASSED, render_text(inside)
    late = check(stamped_at(T0 + timedelta(days=101), der))
    assert late.sub_indication is SubIndication.OUT_OF_BOUNDS_NO_POE


def test_timestamp_over_something_else_is_no_poe() -> None:
    p = pki()
    tsa, _ = pyca_tsa(p.sub, FakeClock(T0 + timedelta(days=5)))
    der = stamp(pyca_cms(p.leaf, CONTENT), tsa, over=b"another signature")
    report = check(der)
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_POE,
    )
    assert report.time_source is TimeSource.CURRENT
    (info,) = report.timestamps
    assert (info.indication, info.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.HASH_FAILURE,
    )
    assert "message_imprint" in report.check(CmsCheck.TIMESTAMP).message


def test_tsa_without_time_stamping_usage_is_no_poe() -> None:
    report = check(stamped_at(T0 + timedelta(days=5), time_stamping=False))
    assert report.sub_indication is SubIndication.NO_POE
    assert report.timestamps[0].sub_indication is SubIndication.CHAIN_CONSTRAINTS_FAILURE


def test_tsa_under_an_untrusted_root_is_no_poe() -> None:
    other = pyca_pki("ecdsa")
    tsa, _ = pyca_tsa(other.sub, FakeClock(T0 + timedelta(days=5)))
    report = check(stamp(pyca_cms(pki().leaf, CONTENT), tsa))
    assert report.sub_indication is SubIndication.NO_POE
    assert report.timestamps[0].sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_without_a_checker_the_timestamp_is_not_performed() -> None:
    report = check(stamped_at(T0 + timedelta(days=5)), timestamp_checker=None)
    stamp_check = report.check(CmsCheck.TIMESTAMP)
    assert stamp_check.status is CheckStatus.NOT_PERFORMED and "present" in stamp_check.message
    assert report.time_source is TimeSource.CURRENT and not report.timestamps


# --- tokens on their own --------------------------------------------------------------


def _token(data: bytes) -> bytes:
    p = pki()
    tsa, _ = pyca_tsa(p.sub, FakeClock(T0 + timedelta(days=5)))
    from trust.cms.algorithms import digest

    return tsa.issue("sha256", digest("sha256", data)).token


def _verify_token(token: bytes, **kwargs: object) -> ValidationReport:
    p = pki()
    options: dict[str, object] = {
        "checker": CHECKER,
        "anchors": [p.root.der],
        "clock": FakeClock(NOW),
    }
    options.update(kwargs)
    return verify_timestamp(token, **options)  # type: ignore[arg-type]


def test_token_report() -> None:
    token = _token(b"document")
    good = _verify_token(token, data=b"document")
    assert good.indication is Indication.TOTAL_PASSED, render_text(good)
    assert good.validated_object == "timestamp"
    assert good.proven_signing_time == T0 + timedelta(days=5) + ACCURACY
    assert good.check(CmsCheck.MESSAGE_IMPRINT).status is CheckStatus.PASSED
    assert [c.subject.split(",")[0] for c in good.chain] == ["CN=Test TSA", "CN=Test Sub CA",
                                                             "CN=Test Root"]  # fmt: skip
    bad = _verify_token(token, data=b"other")
    assert (bad.indication, bad.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.HASH_FAILURE,
    )
    unchecked = _verify_token(token)
    assert unchecked.check(CmsCheck.MESSAGE_IMPRINT).status is CheckStatus.NOT_PERFORMED
    assert _verify_token(token, anchors=[]).sub_indication is (
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    )


@pytest.mark.parametrize("blob", [b"", b"\x30\x03\x02\x01\x01", pyca_cms.__name__.encode()])
def test_token_that_is_not_a_token_is_format_failure(blob: bytes) -> None:
    report = _verify_token(blob, data=b"x")
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )


def test_cms_that_is_not_a_token_is_format_failure() -> None:
    report = _verify_token(pyca_cms(pki().leaf, b"not a TSTInfo"))
    assert report.sub_indication is SubIndication.FORMAT_FAILURE


def test_tampered_token_signature_is_sig_crypto_failure() -> None:
    token = _token(b"document")
    from trust.cms import verify_signed_data

    signature = verify_signed_data(token).signers[0].signature
    tampered = token.replace(signature, signature[:-1] + bytes([signature[-1] ^ 1]))
    report = _verify_token(tampered, data=b"document")
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


def test_sm2_token_from_the_tsa_with_its_sm2_chain(sqlite_url: str) -> None:
    """A GM/T 0033 token (SM3 imprint, SM2 signature) from the real TSA, validated up to
    its SM2 root through the SM2 path plug-in."""
    tsa = authority(migrated(sqlite_url), clock=FakeClock())
    response = parse_response(tsa.respond(request(b"sm2 document", "sm3"), unit="sm2"))
    assert response.token is not None
    root, _, _ = tsa_chain(KeyAlgorithm.SM2)
    report = verify_timestamp(response.token, checker=CHECKER, data=b"sm2 document", anchors=[root])
    assert report.indication is Indication.TOTAL_PASSED, render_text(report)
    assert report.timestamps[0].message_imprint_algorithm == "sm3"


def test_sm2_cms_with_an_sm2_token_from_the_tsa(sqlite_url: str) -> None:
    """All SM2: a CMS by an SM2 key, stamped by the TSA's GM/T 0033 unit (SM3 imprint over
    the signature value), checked on both SM2 backends."""
    from tests.certs_helper import make_chain
    from trust.cms import (
        KeySigner,
        add_unsigned_attributes,
        build_signed_data,
        timestamp_token_attribute,
        verify_signed_data,
    )
    from trust.cms.algorithms import digest
    from trust.sm2.select import get_backend

    root, leaf, key = make_chain(KeyAlgorithm.SM2)
    der = build_signed_data(CONTENT, KeySigner(key, leaf))
    signature = verify_signed_data(der).signers[0].signature
    # make_chain's certificates start now: the token must be dated after that.
    tsa = authority(migrated(sqlite_url), clock=FakeClock(datetime.now(UTC)))
    token = tsa.issue("sm3", digest("sm3", signature), unit="sm2").token
    stamped = add_unsigned_attributes(der, [timestamp_token_attribute(token)])
    tsa_root, _, _ = tsa_chain(KeyAlgorithm.SM2)
    for backend in ("openssl", "pure"):
        report = verify_cms(
            stamped,
            anchors=[root, tsa_root],
            timestamp_checker=CHECKER,
            sm2_backend=get_backend(backend),
        )
        assert report.indication is Indication.TOTAL_PASSED, render_text(report)
        assert report.time_source is TimeSource.PROVEN
        assert report.timestamps[0].message_imprint_algorithm == "sm3"
