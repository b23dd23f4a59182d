"""Shared pieces of the signer tests: a registry over a real key store and a CA whose
keys live there too, on a migrated database, and the keys a signer binds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ca.keystore_source import CA_ACTOR, KeystoreKeySource
from ca.service import CaInfo, CertificateAuthority, CreateCaRequest
from ca.signer_store import SqlSignerStore
from ca.signers import CreateSignerRequest, IssueSpec, SignerInfo, SignerRegistry
from ca.store import SqlCertificateStore
from keystore.kek.local import LocalKek
from keystore.model import Actor, Algorithm, GenerateRequest, Purpose
from keystore.service import KeyStore
from tests.api_support import ApiEnv
from tests.ca_support import URLS, CaEnv, hierarchy
from trust import migrations
from trust.audit import AuditLog
from trust.auth import Grant, Role
from trust.clock import FakeClock
from trust.db import Database
from trust.keys import KeyAlgorithm

# Binds keys and has the CA certify them (both roles, as the signers route asks).
OPERATOR = Actor("token:operator", frozenset({"key_admin", "ca_operator"}))
USER = Actor("token:user")  # what the signers route passes for a signer token


@dataclass
class RegistryEnv:
    db: Database
    clock: FakeClock
    audit: AuditLog
    keystore: KeyStore
    ca: CertificateAuthority
    registry: SignerRegistry
    issuing: dict[KeyAlgorithm, tuple[CaInfo, CaInfo]]

    def key(self, algorithm: Algorithm = Algorithm.SM2, purpose: Purpose = Purpose.SIGN) -> str:
        return self.keystore.generate(
            GenerateRequest(label="signer key", algorithm=algorithm, purpose=purpose), OPERATOR
        ).id

    def issued(
        self,
        algorithm: Algorithm = Algorithm.SM2,
        *,
        ca: KeyAlgorithm | None = None,
        profile: str = "person",
        subject: dict[str, str] | None = None,
    ) -> SignerInfo:
        """A signer over a new key, certified by the matching (or ``ca``) issuing CA."""
        asymmetric = algorithm.asymmetric
        assert asymmetric is not None
        issuing = self.issuing[ca or _ca_for(asymmetric)][1]
        return self.registry.create(
            CreateSignerRequest(
                label=f"{algorithm} signer",
                key_id=self.key(algorithm),
                issue=IssueSpec(issuing.id, profile, subject or {"CN": "张三"}),
            ),
            OPERATOR,
        )


def _ca_for(algorithm: KeyAlgorithm) -> KeyAlgorithm:
    return KeyAlgorithm.SM2 if algorithm is KeyAlgorithm.SM2 else KeyAlgorithm.ECDSA_P256


def make_registry(url: str) -> RegistryEnv:
    db = Database(url)
    migrations.upgrade(db)
    clock = FakeClock(datetime.now(UTC))  # certificates valid now, for openssl
    audit = AuditLog(db, clock)
    keystore = KeyStore(db, LocalKek(os.urandom(16), source="test"), clock=clock, audit=audit)
    store = SqlCertificateStore(db)
    ca = CertificateAuthority(
        store, KeystoreKeySource(keystore, CA_ACTOR), clock, URLS, audit=audit
    )
    env = CaEnv(ca, store, None, db)  # type: ignore[arg-type]
    issuing = {a: hierarchy(env, a) for a in (KeyAlgorithm.SM2, KeyAlgorithm.ECDSA_P256)}
    registry = SignerRegistry(SqlSignerStore(db), keystore, ca, clock, audit)
    return RegistryEnv(db, clock, audit, keystore, ca, registry, issuing)


# --- over HTTP ------------------------------------------------------------------------


def operator_headers(api: ApiEnv) -> dict[str, str]:
    """A token that binds keys and has the CA certify them."""
    return api.headers(Grant(Role.key_admin), Grant(Role.ca_operator))


def api_hierarchy(api: ApiEnv, algorithm: KeyAlgorithm) -> tuple[CaInfo, CaInfo]:
    ca = api.app.state.services.ca()
    root = ca.create_ca(CreateCaRequest(f"根CA {algorithm}", algorithm))
    return root, ca.create_ca(CreateCaRequest(f"签发CA {algorithm}", algorithm, parent_id=root.id))


def api_signer(
    api: ApiEnv,
    headers: dict[str, str],
    issuing: CaInfo,
    algorithm: str = "SM2",
    subject: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A signer made over HTTP: a new key, certified by ``issuing`` (profile person)."""
    key = api.client.post(
        "/v1/keys", json={"algorithm": algorithm, "purpose": "sign", "label": "k"}, headers=headers
    )
    assert key.status_code == 201, key.text
    r = api.client.post(
        "/v1/signers",
        json={
            "label": f"{algorithm} signer",
            "key_id": key.json()["id"],
            "issue": {
                "ca_id": issuing.id,
                "profile": "person",
                "subject": subject or {"CN": "张三"},
            },
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
