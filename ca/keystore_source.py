"""The production ``CaKeySource``: CA and OCSP-responder keys held in the key store.

The CA acts as one principal (``actor``); keys it generates are owned by it, so the
key store's own checks (state, purpose, ownership) and its signature audit apply to
every certificate, CRL and OCSP signature.
"""

from __future__ import annotations

from ca.service import SYSTEM_ACTOR, CertificateAuthority
from ca.store import SqlCertificateStore
from keystore.model import ALGORITHM_OF, Actor, Algorithm, GenerateRequest, Purpose
from keystore.service import KeyStore
from keystore.signer import KeystoreSigner
from trust.auth import AuditSink
from trust.clock import Clock
from trust.coordination import Coordination
from trust.db import Database
from trust.errors import UnsupportedAlgorithm
from trust.keys import KeyAlgorithm
from trust.settings import Settings

# The key store has no OCSP purpose; a responder key is an ordinary signing key.
_PURPOSES = {"ca": Purpose.CA, "ocsp": Purpose.SIGN}
# One principal for every process (API workers, trustctl): the CA keys it generates are
# owned by it, so each process must act under the same id to sign with them.
CA_ACTOR = Actor(SYSTEM_ACTOR, frozenset({"key_admin"}))


class KeystoreKeySource:
    def __init__(self, keystore: KeyStore, actor: Actor) -> None:
        self._keystore = keystore
        self._actor = actor
        # A signer reads its key's public half once; every certificate, CRL and OCSP answer
        # would otherwise parse it again.
        self._signers: dict[str, KeystoreSigner] = {}

    def generate(self, algorithm: KeyAlgorithm, label: str, purpose: str) -> KeystoreSigner:
        stored = ALGORITHM_OF.get(algorithm)
        if stored is None:
            raise UnsupportedAlgorithm(f"the key store does not hold {algorithm} keys")
        info = self._keystore.generate(
            GenerateRequest(label=label, algorithm=stored, purpose=_PURPOSES[purpose]),
            self._actor,
        )
        return KeystoreSigner(self._keystore, self._actor, info.id)

    def signer(self, key_id: str) -> KeystoreSigner:
        signer = self._signers.get(key_id)
        if signer is None:
            signer = self._signers[key_id] = KeystoreSigner(self._keystore, self._actor, key_id)
        return signer

    def generate_escrow_key(self, label: str) -> tuple[str, bytes]:
        request = GenerateRequest(label=label, algorithm=Algorithm.SM2, purpose=Purpose.ENCRYPT)
        info = self._keystore.generate(request, self._actor)
        return info.id, self._keystore.public_key(info.id).spki_der

    def export_enveloped(self, key_id: str, recipient_spki: bytes, admin: str | None) -> bytes:
        # Issuance exports as the CA, which owns the key; recovery is a key administrator's
        # act (its callers require the key_admin role), audited by the key store under them.
        who = self._actor if admin is None else Actor(admin, frozenset({"key_admin"}))
        return self._keystore.export_enveloped(key_id, recipient_spki, who)


def build_certificate_authority(
    settings: Settings,
    db: Database,
    keystore: KeyStore,
    clock: Clock,
    audit: AuditSink,
    coordination: Coordination | None = None,
) -> CertificateAuthority:
    """The production CA: SQL certificate store, keys in ``keystore``, operations audited,
    status changes broadcast through ``coordination``."""
    keys = KeystoreKeySource(keystore, CA_ACTOR)
    return CertificateAuthority.from_settings(
        SqlCertificateStore(db),
        keys,
        clock,
        settings,
        audit,
        escrow=keys,
        coordination=coordination,
    )
