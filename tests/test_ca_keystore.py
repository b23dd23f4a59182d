"""The CA over the real key store: CA and responder keys generated and used there."""

from __future__ import annotations

import os

from asn1crypto import crl, ocsp

from ca.certs import load_certificate, load_certificates, verify_certificate
from ca.issue import IssueRequest
from ca.keystore_source import KeystoreKeySource
from ca.service import CertificateAuthority
from ca.signer import load_public_key, verify_signature
from ca.store import SqlCertificateStore
from keystore.kek.local import LocalKek
from keystore.model import Actor, KeyState, Purpose
from keystore.service import KeyStore
from tests.ca_support import URLS, CaEnv, hierarchy
from tests.test_ca_ocsp import _request
from trust import migrations
from trust.audit import AuditLog
from trust.clock import SystemClock
from trust.db import Database
from trust.keys import KeyAlgorithm, generate

CA_ACTOR = Actor("ca-service", frozenset({"key_admin"}))


def test_hierarchy_issue_crl_and_ocsp_through_the_keystore(database_url: str) -> None:
    db = Database(database_url)
    migrations.upgrade(db)
    clock = SystemClock()
    keystore = KeyStore(
        db, LocalKek(os.urandom(16), source="test"), clock=clock, audit=AuditLog(db, clock)
    )
    try:
        keys = KeystoreKeySource(keystore, CA_ACTOR)
        store = SqlCertificateStore(db)
        env = CaEnv(CertificateAuthority(store, keys, clock, URLS), store, None, db)  # type: ignore[arg-type]
        root, sub = hierarchy(env, KeyAlgorithm.SM2)
        info = keystore.get(sub.key_id, CA_ACTOR)
        assert info.purpose is Purpose.CA and info.state is KeyState.ACTIVE
        spki = generate(KeyAlgorithm.SM2).public_bytes_spki()
        result = env.ca.issue(
            IssueRequest(sub.id, "person", public_key=spki, subject={"CN": "周九"})
        )
        chain = load_certificates(result.chain_pem.encode())
        verify_certificate(load_certificate(result.certificate_der), chain[0])
        verify_certificate(chain[0], chain[1])

        env.ca.revoke(result.serial_hex, "keyCompromise")
        parsed = crl.CertificateList.load(env.ca.current_crl(sub.id))
        public = load_public_key(chain[0].public_key.dump())
        verify_signature(
            public,
            parsed["signature_algorithm"],
            parsed["tbs_cert_list"].dump(),
            parsed["signature"].native,
        )

        responder = env.ca.ensure_ocsp_signer(sub.id)
        assert keystore.get(responder.signer.key_id, CA_ACTOR).purpose is Purpose.SIGN
        answer = ocsp.OCSPResponse.load(
            env.ca.ocsp(_request(chain[0], int(result.serial_hex, 16), b"n0nce"))
        ).basic_ocsp_response
        assert answer["tbs_response_data"]["responses"][0]["cert_status"].name == "revoked"
    finally:
        keystore.close()
        db.dispose()
