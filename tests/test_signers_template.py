"""``SignedDataTemplate`` (the signing service's batch path) gives the same bytes as a
one-off ``build_signed_data`` for every option, with a deterministic RSA signer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asn1crypto import cms, core

from tests.certs_helper import make_chain
from trust.cms import GMT0010, RFC5652, KeySigner, build_signed_data, verify_signed_data
from trust.cms.build import SignedDataTemplate
from trust.keys import KeyAlgorithm, SignatureScheme

WHEN = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


class _Pkcs1Signer(KeySigner):
    """RSA PKCS#1 v1.5 is deterministic, so two builds can be compared byte for byte."""

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, scheme=SignatureScheme.RSA_PKCS1V15)


@pytest.mark.parametrize("detached", [True, False])
@pytest.mark.parametrize("when", [None, WHEN, datetime(2051, 1, 1, tzinfo=UTC)])
@pytest.mark.parametrize("chain", [True, False])
def test_template_matches_build_signed_data(
    detached: bool, when: datetime | None, chain: bool
) -> None:
    root, cert, key = make_chain(KeyAlgorithm.RSA_2048)
    signer = _Pkcs1Signer(key, cert)
    extra = [root] if chain else []
    template = SignedDataTemplate(
        cert, signer.algorithm, detached=detached, extra_certificates=extra
    )
    attribute = cms.CMSAttribute({"type": "1.2.3.4", "values": [core.UTF8String("note")]})
    for content in (b"", b"one", b"x" * 5000):
        signed = template.signed_attributes(content, when)
        der = template.assemble(content, signed, signer.sign(signed), [attribute])
        expected = build_signed_data(
            content,
            signer,
            detached=detached,
            signing_time=when,
            extra_certificates=extra,
            unsigned_attributes=[attribute],
        )
        assert der == expected
        assert verify_signed_data(der, content=content if detached else None).ok


def test_template_profiles_for_sm2() -> None:
    _, cert, key = make_chain(KeyAlgorithm.SM2)
    signer = KeySigner(key, cert)
    for profile in (GMT0010, RFC5652):
        template = SignedDataTemplate(cert, signer.algorithm, profile=profile, detached=True)
        signed = template.signed_attributes(b"doc", WHEN)
        der = template.assemble(b"doc", signed, signer.sign(signed))
        assert cms.ContentInfo.load(der)["content_type"].dotted == profile.signed_data_type
        assert verify_signed_data(der, content=b"doc").ok
