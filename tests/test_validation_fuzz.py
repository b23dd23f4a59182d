"""Malformed certificates, CRLs and signatures: a report or a trust error, nothing else."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.validation_support import T0, vector_certs
from trust.errors import TrustError
from trust.validation import ValidationReport, validate_certificate, verify_raw_signature

ROOT, SUB = vector_certs("tongsuo_sm2_chain-ca.crt")
LEAF = vector_certs("tongsuo_sm2_client_sign.crt")[0].dump()


@st.composite
def mutated(draw: st.DrawFn, original: bytes = LEAF) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        pos = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos : pos + draw(st.integers(1, 40))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def _report_or_trust_error(call) -> None:
    with contextlib.suppress(TrustError):
        assert isinstance(call(), ValidationReport)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cert=st.one_of(mutated(), st.binary(max_size=300)))
def test_malformed_certificate(cert):
    _report_or_trust_error(lambda: validate_certificate(cert, [SUB], anchors=[ROOT], at=T0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cert=mutated(), signature=st.binary(max_size=80), level=st.integers(0, 2))
def test_malformed_certificate_and_signature(cert, signature, level):
    _report_or_trust_error(
        lambda: verify_raw_signature(
            cert,
            signature,
            data=b"m",
            verify_level=level,
            anchors=[ROOT],
            intermediates=[SUB],
            at=T0,
        )
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intermediate=mutated(SUB.dump()), crl=st.binary(max_size=200))
def test_malformed_intermediate_and_crl(intermediate, crl):
    _report_or_trust_error(
        lambda: validate_certificate(LEAF, [intermediate], anchors=[ROOT], at=T0, crls=[crl])
    )


def _stamped() -> tuple[bytes, bytes, bytes]:
    """(a stamped CMS, its token, the root), from the pyca test PKI."""
    from tests.validation_support import pyca_cms, pyca_pki, pyca_tsa, stamp
    from trust.clock import FakeClock
    from trust.cms import verify_signed_data

    pki = pyca_pki("ecdsa")
    tsa, _ = pyca_tsa(pki.sub, FakeClock(T0))
    der = stamp(pyca_cms(pki.leaf, b"fuzzed"), tsa)
    info = verify_signed_data(der)
    assert info.signers[0].signature_ok
    from asn1crypto import cms

    attrs = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["unsigned_attrs"]
    return der, attrs[0]["values"][0].dump(), pki.root.der


STAMPED, TOKEN, STAMP_ROOT = _stamped()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=st.one_of(mutated(TOKEN), st.binary(max_size=300)))
def test_malformed_timestamp_token(token: bytes) -> None:
    from timestamp.checker import TokenChecker
    from trust.validation import verify_timestamp

    _report_or_trust_error(
        lambda: verify_timestamp(token, checker=TokenChecker(), data=b"x", anchors=[STAMP_ROOT])
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(der=mutated(STAMPED))
def test_malformed_stamped_cms_is_always_a_report(der: bytes) -> None:
    from timestamp.checker import TokenChecker
    from trust.validation import verify_cms

    report = verify_cms(der, anchors=[STAMP_ROOT], timestamp_checker=TokenChecker())
    assert isinstance(report, ValidationReport)
