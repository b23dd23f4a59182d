"""The signer registry over the real key store and CA: binding, refusals, raw and CMS
signing, audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asn1crypto import cms, x509

from ca.certs import load_certificate
from ca.issue import IssueRequest
from ca.signers import CmsOptions, CreateSignerRequest, IssueSpec
from keystore.model import Actor, Algorithm, Purpose, SignInput
from tests.signers_support import OPERATOR, USER, RegistryEnv, make_registry
from trust.cms import verify_signed_data
from trust.errors import (
    BadRequest,
    Forbidden,
    KeyNotActive,
    KeyPurposeMismatch,
    KeySuspended,
    SignerCertificateMismatch,
    SignerDisabled,
    SignerNotFound,
    TsaUnitUnavailable,
    UnsupportedAlgorithm,
)
from trust.keys import KeyAlgorithm, generate, load_public_key
from trust.sm2.select import get_backend


@pytest.fixture
def env(sqlite_url: str) -> Iterator[RegistryEnv]:
    made = make_registry(sqlite_url)
    yield made
    made.keystore.close()
    made.db.dispose()


def _point(cert_der: bytes) -> bytes:
    return x509.Certificate.load(cert_der).public_key["public_key"].native


def test_issued_signer_binds_key_certificate_and_chain(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.SM2, subject={"CN": "张三"})
    assert info.id.startswith("sgn_") and len(info.id) == 28
    assert info.source == "issued" and info.status == "active" and info.owner == OPERATOR.id
    assert info.subject.endswith("张三") or "张三" in info.subject
    cert = x509.Certificate.load(info.certificate_der)
    spki = env.keystore.public_key(info.key_id).spki_der
    assert cert["tbs_certificate"]["subject_public_key_info"].dump() == spki
    root, sub = env.issuing[KeyAlgorithm.SM2]
    assert [x509.Certificate.load(c).subject.human_friendly for c in info.chain_der] == [
        x509.Certificate.load(_der(sub.certificate_pem)).subject.human_friendly,
        x509.Certificate.load(_der(root.certificate_pem)).subject.human_friendly,
    ]
    assert info.certificate_serial is not None and info.ca_id == sub.id
    assert env.registry.get(info.id) == info
    assert [s.id for s in env.registry.list_signers()] == [info.id]
    actions = [(e.action, e.outcome) for e in env.audit.tail(10)]
    assert ("certificate.issue", "success") in actions and ("signer.create", "success") in actions


def _der(pem_text: str) -> bytes:
    return load_certificate(pem_text.encode()).dump()


def test_imported_certificate_must_match_the_key_and_chain(env: RegistryEnv) -> None:
    key_id = env.key(Algorithm.ECDSA_P256)
    root, sub = env.issuing[KeyAlgorithm.ECDSA_P256]
    spki = env.keystore.public_key(key_id).spki_der
    issued = env.ca.issue(IssueRequest(sub.id, "person", public_key=spki, subject={"CN": "李四"}))
    chain = (sub.certificate_pem + root.certificate_pem).encode()
    info = env.registry.create(
        CreateSignerRequest(
            "imported", key_id, certificate=issued.certificate_pem.encode(), chain=chain
        ),
        OPERATOR,
    )
    assert info.source == "imported" and info.certificate_serial is None
    assert len(info.chain_der) == 2

    other = generate(KeyAlgorithm.ECDSA_P256).public_bytes_spki()
    foreign = env.ca.issue(IssueRequest(sub.id, "person", public_key=other, subject={"CN": "王五"}))
    with pytest.raises(SignerCertificateMismatch):
        env.registry.create(
            CreateSignerRequest("x", key_id, certificate=foreign.certificate_pem.encode()), OPERATOR
        )
    sm2_root = env.issuing[KeyAlgorithm.SM2][0]
    with pytest.raises(SignerCertificateMismatch):
        env.registry.create(
            CreateSignerRequest(
                "x",
                key_id,
                certificate=issued.certificate_der,
                chain=sm2_root.certificate_pem.encode(),
            ),
            OPERATOR,
        )
    assert len(env.registry.list_signers()) == 1


def test_binding_refusals(env: RegistryEnv) -> None:
    sub = env.issuing[KeyAlgorithm.SM2][1]
    spec = IssueSpec(sub.id, "person", {"CN": "赵六"})
    key_id = env.key()
    key_admin_only = Actor("token:ka", frozenset({"key_admin"}))
    with pytest.raises(Forbidden):  # certifying needs ca_operator too
        env.registry.create(CreateSignerRequest("x", key_id, issue=spec), key_admin_only)
    with pytest.raises(Forbidden):  # a CA operator may not bind a key it may not use
        env.registry.create(
            CreateSignerRequest("x", key_id, issue=spec),
            Actor("token:ca", frozenset({"ca_operator"})),
        )
    with pytest.raises(KeyPurposeMismatch):
        env.registry.create(
            CreateSignerRequest("x", env.key(purpose=Purpose.TSA), issue=spec), OPERATOR
        )
    with pytest.raises(BadRequest):
        env.registry.create(CreateSignerRequest("x", key_id), OPERATOR)
    assert env.registry.list_signers() == []
    refusals = [e for e in env.audit.tail(20) if e.action == "signer.create"]
    assert refusals and all(e.outcome == "failure" for e in refusals)
    with pytest.raises(SignerNotFound):
        env.registry.get("sgn_000000000000000000000000")


def test_raw_sm2_signature_verifies_with_the_pure_backend(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.SM2)
    results = env.registry.sign(
        info.id, [SignInput(b"hello"), SignInput(b"with id", signer_id=b"alice@example")], USER
    )
    pure = get_backend("pure").load_public(_point(info.certificate_der))
    pure.verify(b"hello", results[0].signature)
    pure.verify(b"with id", results[1].signature, b"alice@example")
    record = [e for e in env.audit.tail(5) if e.action == "signer.sign"][-1]
    assert record.actor == USER.id and record.target == info.id


def test_sm2_cms_gmt0010_verifies_with_the_pure_backend(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.SM2)
    (der,) = env.registry.sign_cms(info.id, [b"content"], CmsOptions(detached=True), USER)
    parsed = cms.ContentInfo.load(der)
    assert parsed["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"
    signed = parsed["content"]
    assert signed["encap_content_info"]["content"].native is None
    si = signed["signer_infos"][0]
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.301.1"
    attrs = {a["type"].native for a in si["signed_attrs"]}
    assert attrs == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    signed_attrs = b"\x31" + si["signed_attrs"].dump()[1:]
    get_backend("pure").load_public(_point(info.certificate_der)).verify(
        signed_attrs, si["signature"].native
    )
    assert verify_signed_data(der, content=b"content").ok


def test_cms_options(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.ECDSA_P256)
    (der,) = env.registry.sign_cms(info.id, [b"attached"], CmsOptions(include_chain=True), USER)
    signed = cms.ContentInfo.load(der)["content"]
    assert signed["encap_content_info"]["content"].native == b"attached"
    assert len(signed["certificates"]) == 3
    assert verify_signed_data(der).ok
    with pytest.raises(UnsupportedAlgorithm):
        env.registry.sign_cms(info.id, [b"x"], CmsOptions(profile="gmt0010"), USER)
    with pytest.raises(BadRequest):
        env.registry.sign_cms(info.id, [b"x"], CmsOptions(profile="pkcs7"), USER)
    with pytest.raises(TsaUnitUnavailable):  # no TSA given
        env.registry.sign_cms(info.id, [b"x"], CmsOptions(timestamp=True), USER)
    stamper = _NoUnit()
    with pytest.raises(TsaUnitUnavailable):  # a TSA without a unit: refused before signing
        env.registry.sign_cms(
            info.id, [b"x"], CmsOptions(timestamp=True), USER, timestamper=stamper
        )
    assert stamper.checked and not stamper.stamped


def test_disabled_signer_suspended_and_rotated_key_are_refused(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.SM2)
    env.registry.set_status(info.id, "disabled", OPERATOR)
    with pytest.raises(SignerDisabled):
        env.registry.sign(info.id, [SignInput(b"x")], USER)
    with pytest.raises(SignerDisabled):
        env.registry.cms_signer(info.id, USER)
    env.registry.set_status(info.id, "active", OPERATOR)
    env.registry.sign(info.id, [SignInput(b"x")], USER)

    env.keystore.suspend(info.key_id, OPERATOR)
    with pytest.raises(KeySuspended):
        env.registry.sign_cms(info.id, [b"x"], CmsOptions(), USER)
    env.keystore.resume(info.key_id, OPERATOR)
    env.keystore.rotate(info.key_id, OPERATOR)
    with pytest.raises(KeyNotActive):
        env.registry.sign(info.id, [SignInput(b"x")], USER)
    actions = [(e.action, e.outcome, e.details.get("code")) for e in env.audit.tail(40)]
    assert ("signer.disable", "success", None) in actions
    assert ("signer.enable", "success", None) in actions
    assert ("signer.sign", "failure", "signer_disabled") in actions
    assert ("signer.cms", "failure", "key_suspended") in actions
    assert ("signer.sign", "failure", "key_not_active") in actions


def test_cms_signer_for_other_formats_signs_with_the_certified_key(env: RegistryEnv) -> None:
    info = env.issued(Algorithm.ECDSA_P256)
    signer = env.registry.cms_signer(info.id, USER)
    assert signer.certificate.dump() == info.certificate_der
    load_public_key(signer.spki_der).verify(signer.sign(b"doc"), b"doc")
    assert [c.dump() for c in env.registry.chain(info.id)] == list(info.chain_der)


def test_store_round_trip_on_each_database(database_url: str) -> None:
    """The ``ca_signer`` table on SQLite and PostgreSQL: binary certificate and chain,
    aware times, status changes."""
    env = make_registry(database_url)
    try:
        info = env.issued(Algorithm.ECDSA_P256)
        again = env.registry.get(info.id)
        assert again == info and again.created_at.tzinfo is not None
        assert env.registry.set_status(info.id, "disabled", OPERATOR).status == "disabled"
        assert [s.status for s in env.registry.list_signers()] == ["disabled"]
    finally:
        env.keystore.close()
        env.db.dispose()


class _NoUnit:
    """A ``Timestamper`` whose TSA has no unit."""

    def __init__(self) -> None:
        self.checked = self.stamped = False

    def check(self) -> None:
        self.checked = True
        raise TsaUnitUnavailable("no TSA unit sm2")

    def __call__(self, hash_algorithm: str, digest: bytes, /) -> bytes:
        self.stamped = True
        return b""
