"""CA rollover: new issuance under the new key, what the old key issued keeps validating
(openssl verify and trust.validation, CRLs of both keys, OCSP by both keys), link
certificates bridge old and new roots; over HTTP and trustctl."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp

from ca.certs import certificate_pem, load_certificate, verify_certificate
from ca.issue import IssueRequest
from ca.service import CertificateAuthority
from tests.api_support import make_env as make_api_env
from tests.ca_support import (
    URLS,
    CaEnv,
    crl_pem,
    hierarchy,
    make_env,
    openssl_output,
    write,
)
from tests.test_api_ca import problem
from tests.test_ca_ocsp import _request
from trust.audit import AuditLog
from trust.auth import Grant, Role
from trust.clock import SystemClock
from trust.keys import KeyAlgorithm, generate
from trust.validation.certs import load_certificates
from trust.validation.path import PathRequest, PathValidator, RevocationMode

PEM = "application/x-pem-file"


@pytest.fixture
def env(sqlite_url: str) -> CaEnv:
    return make_env(sqlite_url)


def _leaf(env: CaEnv, ca_id: str, name: str) -> bytes:
    spki = generate(KeyAlgorithm.ECDSA_P256).public_bytes_spki()
    return env.ca.issue(
        IssueRequest(ca_id, "person", public_key=spki, subject={"CN": name})
    ).certificate_der


def _ocsp_status(env: CaEnv, leaf: bytes, issuer: bytes) -> str:
    request = _request(load_certificate(issuer), load_certificate(leaf).serial_number, None)
    basic = asn1_ocsp.OCSPResponse.load(env.ca.ocsp(request)).basic_ocsp_response
    return str(basic["tbs_response_data"]["responses"][0]["cert_status"].name)


def _verify(tmp_path: Path, leaf: bytes, untrusted: list[bytes], anchor: bytes, *crls: bytes):  # type: ignore[no-untyped-def]
    write(tmp_path / "anchor.pem", certificate_pem(anchor))
    write(tmp_path / "untrusted.pem", "".join(certificate_pem(c) for c in untrusted) or "\n")
    write(tmp_path / "leaf.pem", certificate_pem(leaf))
    args: list[str | Path] = ["verify", "-CAfile", tmp_path / "anchor.pem"]
    if untrusted:
        args += ["-untrusted", tmp_path / "untrusted.pem"]
    if crls:
        write(tmp_path / "crls.pem", b"".join(crl_pem(c) for c in crls))
        args += ["-crl_check_all", "-CRLfile", tmp_path / "crls.pem"]
    return openssl_output(*args, tmp_path / "leaf.pem")


def test_issuing_ca_rollover_ecdsa(env: CaEnv, tmp_path: Path) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    old_leaf = _leaf(env, sub.id, "before")
    result = env.ca.rollover(sub.id, actor="token:op")
    assert result.previous_generation == 1 and result.ca.generation == 2
    assert result.ca.key_id != sub.key_id and result.ca.subject == sub.subject
    new_leaf = _leaf(env, sub.id, "after")
    old_sub, new_sub = (
        load_certificate(env.ca.certificate(sub.id, 1)),
        load_certificate(env.ca.certificate(sub.id)),
    )
    verify_certificate(load_certificate(new_leaf), new_sub)  # new issuance: new key
    verify_certificate(load_certificate(old_leaf), old_sub)
    assert result.new_with_old is not None and result.old_with_new is not None
    verify_certificate(load_certificate(result.new_with_old), old_sub)  # old signs new
    verify_certificate(load_certificate(result.old_with_new), new_sub)  # new signs old
    assert env.ca.chain(sub.id) == [new_sub.dump(), env.ca.certificate(root.id)]
    assert env.ca.chain(sub.id, 1)[0] == old_sub.dump()
    # The new key's certificates name their own CRL and caIssuers URLs.
    assert "?generation=2" in str(load_certificate(new_leaf).crl_distribution_points[0].url)

    env.ca.revoke(load_certificate(old_leaf).serial_number.__format__("x"), "key_compromise")
    crl1, crl2 = env.ca.current_crl(sub.id, 1), env.ca.current_crl(sub.id, 2)
    root_crl = env.ca.current_crl(root.id)
    revoked_in = [
        len(asn1_crl.CertificateList.load(c)["tbs_cert_list"]["revoked_certificates"])
        for c in (crl1, crl2)
    ]
    assert revoked_in == [1, 0]  # one CRL per key, each for what that key signed
    for crl, sub_cert in ((crl1, old_sub), (crl2, new_sub)):
        parsed = asn1_crl.CertificateList.load(crl)
        assert parsed.authority_key_identifier == sub_cert.key_identifier

    root_der = env.ca.certificate(root.id)
    code, out = _verify(tmp_path, new_leaf, [new_sub.dump()], root_der, crl1, crl2, root_crl)
    assert code == 0, out
    code, out = _verify(tmp_path, old_leaf, [old_sub.dump()], root_der, crl1, crl2, root_crl)
    assert code != 0 and "certificate revoked" in out
    other = _leaf(env, sub.id, "after 2")
    code, out = _verify(tmp_path, other, [new_sub.dump()], root_der, crl1, crl2, root_crl)
    assert code == 0, out

    # trust.validation: both generations' certificates validate with their CRLs.
    validator = PathValidator([root_der])
    for leaf, sub_cert in ((new_leaf, new_sub), (old_leaf, old_sub)):
        validation = validator.validate(
            PathRequest(
                leaf,
                intermediates=[sub_cert.dump()],
                crls=[crl1, crl2, root_crl],
                revocation_mode=RevocationMode.HARD_FAIL,
            )
        )
        assert validation.ok is (leaf == new_leaf), validation.failure

    # OCSP: each key's responder answers for what it signed.
    assert _ocsp_status(env, new_leaf, new_sub.dump()) == "good"
    assert _ocsp_status(env, old_leaf, old_sub.dump()) == "revoked"
    assert _ocsp_status(env, new_leaf, old_sub.dump()) == "unknown"


def test_root_rollover_links_bridge_old_and_new_anchors(env: CaEnv, tmp_path: Path) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    old_root = env.ca.certificate(root.id)
    old_sub = env.ca.certificate(sub.id)
    old_leaf = _leaf(env, sub.id, "old world")
    rolled = env.ca.rollover(root.id)
    new_root = env.ca.certificate(root.id, 2)
    assert load_certificate(new_root).self_signed == "maybe"  # self-signed, new key
    # The issuing CA still chains to the root key that certified it.
    assert env.ca.chain(sub.id) == [old_sub, old_root]
    sub_rolled = env.ca.rollover(sub.id)  # now certified by the new root key
    assert env.ca.chain(sub.id) == [env.ca.certificate(sub.id), new_root]
    new_leaf = _leaf(env, sub.id, "new world")
    assert rolled.new_with_old is not None and rolled.old_with_new is not None
    assert sub_rolled.ca.generation == 2

    new_sub = env.ca.certificate(sub.id)
    # Trusting only the old root: new certificates through NewWithOld.
    code, out = _verify(tmp_path, new_leaf, [new_sub, rolled.new_with_old], old_root)
    assert code == 0, out
    code, out = _verify(tmp_path, new_leaf, [new_sub], old_root)
    assert code != 0  # without the link it cannot
    # Trusting only the new root: old certificates through OldWithNew.
    code, out = _verify(tmp_path, old_leaf, [old_sub, rolled.old_with_new], new_root)
    assert code == 0, out
    # CRLs of both root keys, with the issuing CA's both keys.
    crls = [env.ca.current_crl(root.id, g) for g in (1, 2)]
    crls += [env.ca.current_crl(sub.id, g) for g in (1, 2)]
    code, out = _verify(tmp_path, new_leaf, [new_sub], new_root, *crls)
    assert code == 0, out
    code, out = _verify(tmp_path, old_leaf, [old_sub], old_root, *crls)
    assert code == 0, out


def test_sm2_rollover_link_by_link(env: CaEnv) -> None:
    root, sub = hierarchy(env, KeyAlgorithm.SM2)
    old_leaf = _leaf_sm2(env, sub.id)
    result = env.ca.rollover(sub.id)
    new_leaf = _leaf_sm2(env, sub.id)
    old_sub = load_certificate(env.ca.certificate(sub.id, 1))
    new_sub = load_certificate(env.ca.certificate(sub.id, 2))
    verify_certificate(load_certificate(old_leaf), old_sub)
    verify_certificate(load_certificate(new_leaf), new_sub)
    verify_certificate(new_sub, load_certificate(env.ca.certificate(root.id)))
    assert result.new_with_old is not None and result.old_with_new is not None
    verify_certificate(load_certificate(result.new_with_old), old_sub)
    verify_certificate(load_certificate(result.old_with_new), new_sub)


def _leaf_sm2(env: CaEnv, ca_id: str) -> bytes:
    spki = generate(KeyAlgorithm.SM2).public_bytes_spki()
    return env.ca.issue(
        IssueRequest(ca_id, "person", public_key=spki, subject={"CN": "国密"})
    ).certificate_der


def test_rollover_over_http(tmp_path: Path) -> None:
    api = make_api_env(tmp_path)
    api.clock.set(datetime.now(UTC).replace(microsecond=0))
    operator = api.headers(Grant(Role.ca_operator))
    from tests.test_api_ca import hierarchy as api_hierarchy

    _, sub = api_hierarchy(api, operator, "ecdsa-p256")
    url = f"/v1/cas/{sub['id']}/rollover"
    problem(api.client.post(url, json={}, headers=api.headers(Grant(Role.key_admin))), 403)
    r = api.client.post(url, json={"validity_days": 365}, headers=operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ca"]["generation"] == 2 and body["previous_generation"] == 1
    assert body["new_with_old_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert api.client.get(f"/v1/cas/{sub['id']}", headers=operator).json()["generation"] == 2
    chain = api.client.get(f"/v1/cas/{sub['id']}/chain").text
    assert chain.startswith(body["ca"]["certificate_pem"])
    old_chain = api.client.get(f"/v1/cas/{sub['id']}/chain?generation=1").text
    assert old_chain.startswith(sub["certificate_pem"])
    for generation in ("", "?generation=2"):
        r = api.client.get(f"/crl/{sub['id']}.crl{generation}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    der_only = {"accept": "application/pkix-cert"}
    first = api.client.get(f"/v1/cas/{sub['id']}/certificate", headers=der_only)
    assert certificate_pem(first.content) == sub["certificate_pem"]  # a DER-only client
    both = api.client.get(f"/v1/cas/{sub['id']}/certificate", headers={"accept": PEM}).text
    assert both == sub["certificate_pem"] + body["ca"]["certificate_pem"]  # first key first
    second = api.client.get(f"/v1/cas/{sub['id']}/certificate?generation=2").text
    assert second == body["ca"]["certificate_pem"]
    problem(api.client.get(f"/crl/{sub['id']}.crl?generation=7"), 404, "ca_not_found")
    problem(api.client.post("/v1/cas/ca_0000/rollover", json={}, headers=operator), 404)


def test_another_process_issues_with_the_new_key_within_a_second(
    env: CaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issuance keeps its CA's record up to a second: a rollover made by another process
    (another CertificateAuthority over the same store) is followed within it, and what
    the old key issues meanwhile is recorded under that key and verifies with it."""
    _, sub = hierarchy(env, KeyAlgorithm.ECDSA_P256)
    other = CertificateAuthority(env.store, env.keys, SystemClock(), URLS)
    other_env = CaEnv(other, env.store, env.keys, env.db)
    _leaf(other_env, sub.id, "read the record")
    _leaf(env, sub.id, "read it here too")
    env.ca.rollover(sub.id)
    meanwhile = load_certificate(_leaf(other_env, sub.id, "meanwhile"))
    assert env.store.get(format(meanwhile.serial_number, "x")).ca_generation == 1
    verify_certificate(meanwhile, load_certificate(env.ca.certificate(sub.id, 1)))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 1.01)
    later = load_certificate(_leaf(other_env, sub.id, "later"))
    assert env.store.get(format(later.serial_number, "x")).ca_generation == 2
    verify_certificate(later, load_certificate(env.ca.certificate(sub.id, 2)))
    # In the process that rolled over, at once.
    now_leaf = load_certificate(_leaf(env, sub.id, "at once"))
    assert env.store.get(format(now_leaf.serial_number, "x")).ca_generation == 2


def test_rollover_audit_names_the_link_certificates(sqlite_url: str) -> None:
    env = make_env(sqlite_url)
    audit = AuditLog(env.db, SystemClock())
    ca = CertificateAuthority(env.store, env.keys, SystemClock(), URLS, audit=audit)
    _, sub = hierarchy(CaEnv(ca, env.store, env.keys, env.db), KeyAlgorithm.SM2)
    result = ca.rollover(sub.id, actor="token:op")
    (entry,) = [e for e in audit.tail(5) if e.action == "ca.rollover"]
    assert result.new_with_old is not None and result.old_with_new is not None
    links = [load_certificate(d).serial_number for d in (result.new_with_old, result.old_with_new)]
    assert entry.actor == "token:op" and entry.target == sub.id
    assert entry.details == {
        "generation": 2,
        "key_id": result.ca.key_id,
        "serial_hex": result.ca.serial_hex,
        "new_with_old_serial_hex": format(links[0], "x"),
        "old_with_new_serial_hex": format(links[1], "x"),
    }
    for link in links:
        assert env.store.get(format(link, "x")).state == "issued"  # recorded certificates


def test_plain_ca_issuers_url_serves_every_key_after_a_rollover(tmp_path: Path) -> None:
    """Certificates of any key may name the plain caIssuers URL (those of later keys when
    issued before the URLs carried ?generation=): after a rollover it serves a certs-only
    CMS bundle of every key's certificate, from which openssl builds either key's chain."""
    api = make_api_env(tmp_path)
    api.clock.set(datetime.now(UTC).replace(microsecond=0))
    operator = api.headers(Grant(Role.ca_operator))
    from tests.test_api_ca import ecdsa_csr
    from tests.test_api_ca import hierarchy as api_hierarchy

    root, sub = api_hierarchy(api, operator, "ecdsa-p256")
    url = f"/v1/cas/{sub['id']}/certificate"
    issue = f"/v1/cas/{sub['id']}/certificates"

    def leaf(name: str) -> str:
        r = api.client.post(
            issue, json={"csr_pem": ecdsa_csr(name), "profile": "person"}, headers=operator
        )
        assert r.status_code == 201, r.text
        return str(r.json()["certificate_pem"])

    before = leaf("before the rollover")
    assert api.client.get(url).text == sub["certificate_pem"]  # one key: unchanged
    one = api.client.get(url, headers={"accept": "application/pkcs7-mime"})
    assert one.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert [c.dump() for c in load_certificates(one.content)] == [
        load_certificate(sub["certificate_pem"].encode()).dump()
    ]
    r = api.client.post(f"/v1/cas/{sub['id']}/rollover", json={}, headers=operator)
    assert r.status_code == 200, r.text
    after = leaf("after the rollover")
    for accept in ({}, {"accept": "*/*"}, {"accept": "application/pkcs7-mime"}):
        r = api.client.get(url, headers=accept)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    bundle = write(tmp_path / "issuers.p7c", r.content)
    printed = openssl_output("pkcs7", "-inform", "DER", "-in", bundle, "-print_certs")
    assert printed[0] == 0, printed[1]
    untrusted = write(tmp_path / "issuers.pem", printed[1])
    assert printed[1].count("BEGIN CERTIFICATE") == 2
    anchor = write(tmp_path / "root.pem", root["certificate_pem"])
    for name, pem_text in (("before", before), ("after", after)):
        path = write(tmp_path / f"{name}.pem", pem_text)
        code, out = openssl_output("verify", "-CAfile", anchor, "-untrusted", untrusted, path)
        assert code == 0, out
        # Without what the plain URL served, neither chain builds.
        code, _ = openssl_output("verify", "-CAfile", anchor, path)
        assert code != 0
    # ?generation= still names one key's certificate.
    assert api.client.get(url + "?generation=1").text == sub["certificate_pem"]


def test_rollover_with_trustctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_cli_ca import run

    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    for name in ("TRUST_DATABASE_URL", "TRUST_REDIS_URL", "TRUST_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    from typer.testing import CliRunner

    from trust.settings import get_settings

    get_settings.cache_clear()
    try:
        cli = CliRunner()
        run(cli, "init")
        cas = json.loads(run(cli, "ca", "list", "--json").stdout)["cas"]
        issuing = next(c for c in cas if c["parent_id"] and c["algorithm"] == "sm2")
        links = tmp_path / "links.pem"
        out = json.loads(
            run(cli, "ca", "rollover", issuing["id"], "--json", "--links-out", str(links)).stdout
        )
        assert out["ca"]["generation"] == 2 and links.read_text().count("BEGIN CERTIFICATE") == 2
        issued = json.loads(run(cli, "ca", "crl", "--issue", "--json").stdout)["issued"]
        assert f"{issuing['id']}/1" in issued  # the retired key's CRL is kept up too
    finally:
        get_settings.cache_clear()
