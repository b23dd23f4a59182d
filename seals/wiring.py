"""The production seal service (SQL registry, maker key in the key store certified by
the service's CA, certificate status as verification finds it: the CA's records for its
own certificates, the caller's CRLs and OCSP responses for others) and seal verification
with the service's trust anchors."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from asn1crypto import x509

from ca.certs import certificate_pem, serial_hex
from ca.service import STATUS_CHANNEL, CertificateAuthority
from ca.signer_store import SignerRecord, SignerStore, SqlSignerStore
from keystore.model import Actor
from keystore.service import KeyStore
from seals.cache import BroadcastCache
from seals.maker import MakerConfig, SealMaker
from seals.service import (
    NO_REVOCATION_DATA,
    CertificateStatus,
    RevocationInput,
    RevocationState,
    SealPolicy,
    SealService,
    SignerHandles,
    StampSigner,
    Timestamper,
)
from seals.store import SqlSealStore
from seals.validation import SealRegistry, SealTrust
from seals.verify import VerificationResult, verify_seal, verify_signature
from trust.auth import AuditSink
from trust.clock import Clock
from trust.coordination import Coordination
from trust.db import Database
from trust.errors import CertificateNotFound, ConfigurationError
from trust.settings import Settings
from trust.validation import PathValidator
from trust.validation.certs import load_certificates


class CaCertificateStatus:
    """Revocation of certificates this service's CA issued, from its records (the same
    data its CRLs and OCSP answers come from); None for certificates it did not issue.

    With coordination, answers are kept until the CA broadcasts a status change (any
    revocation, hold or release drops them all, in every worker) or ``ttl`` seconds, the
    bound the CA's OCSP responder keeps unchanged statuses for."""

    def __init__(
        self, ca: CertificateAuthority, coordination: Coordination | None = None, ttl: float = 0.0
    ) -> None:
        self._ca = ca
        # A 1-tuple, so that "not ours" (None) is kept too.
        self._cache: BroadcastCache[bytes, tuple[CertificateStatus | None]] | None = (
            BroadcastCache.of(coordination, STATUS_CHANNEL, ttl, topic=None)
        )

    def record(self, certificate: bytes) -> CertificateStatus | None:
        cache = self._cache
        if cache is None:
            return self._read(certificate)
        found = cache.get(certificate)
        if found is None:
            ticket = cache.ticket()
            found = (self._read(certificate),)
            cache.put(certificate, found, ticket)
        return found[0]

    def _read(self, certificate: bytes) -> CertificateStatus | None:
        cert = x509.Certificate.load(certificate)
        try:
            info = self._ca.get_certificate(serial_hex(cert.serial_number))
        except CertificateNotFound:
            return None
        if info.certificate_pem != certificate_pem(certificate):
            return None  # same serial, another certificate: not one of ours
        if info.status in ("revoked", "on_hold"):
            return CertificateStatus(
                RevocationState.REVOKED, _RECORDS, info.revoked_at, info.revocation_reason
            )
        return CertificateStatus(RevocationState.GOOD, _RECORDS)


_RECORDS = "CA records"


class RegistrySigners:
    """The signer registry as stamping uses it: handles from the registry, the record
    read at every stamp straight from the registry's store (the registry's ``get`` also
    parses the certificate for display, a millisecond a stamp does not need)."""

    def __init__(self, registry: SignerHandles, store: SignerStore) -> None:
        self._registry = registry
        self._store = store

    def state(self, signer_id: str) -> SignerRecord:
        return self._store.get(signer_id)

    def cms_signer(self, signer_id: str, actor: Actor) -> StampSigner:
        return self._registry.cms_signer(signer_id, actor)


def seal_policy(settings: Settings) -> SealPolicy:
    return SealPolicy(
        required_approvals=settings.seal_required_approvals,
        type_codes=dict(settings.seal_type_codes),
        vendor_id=settings.seal_vendor_id,
    )


def build_seal_service(
    settings: Settings,
    db: Database,
    keystore: KeyStore,
    ca: CertificateAuthority,
    clock: Clock,
    audit: AuditSink,
    *,
    signers: SignerHandles,
    timestamper: Timestamper | None = None,
    coordination: Coordination | None = None,
) -> SealService:
    store = SqlSealStore(db)
    maker = SealMaker(
        store,
        keystore,
        ca,
        clock,
        MakerConfig(
            ca_name=settings.seal_maker_ca or settings.ca_default_sm2_issuing_name,
            organization=settings.ca_default_organization,
            validity_days=settings.seal_maker_validity_days,
        ),
    )
    return SealService(
        store,
        maker,
        clock,
        audit,
        seal_policy(settings),
        signers=RegistrySigners(signers, SqlSignerStore(db)),
        # Stamping checks signer certificates as verification does (the store is the
        # registry it reads: no seal status is asked of it here).
        certificate_status=SealVerifier(settings, ca, clock, store, coordination=coordination),
        timestamper=timestamper,
        coordination=coordination,
    )


class SealVerifier:
    """Seal and stamp verification with the service's trust: its root CAs and the
    configured anchor files as anchors, its issuing CAs as intermediates, its CA's
    records for revocation of the certificates it issued (the CRLs and OCSP responses a
    caller gives for others) and its registry for seal status. The anchors are re-read
    every ``refresh_seconds`` (a CA created meanwhile becomes trusted then)."""

    def __init__(
        self,
        settings: Settings,
        ca: CertificateAuthority,
        clock: Clock,
        registry: SealRegistry | None,
        *,
        refresh_seconds: float = 300.0,
        coordination: Coordination | None = None,
    ) -> None:
        self._settings = settings
        self._ca = ca
        self._ca_status = CaCertificateStatus(ca, coordination, settings.ca_ocsp_status_seconds)
        self._clock = clock
        self._registry = registry
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._built: tuple[float, SealTrust] | None = None

    def trust(self) -> SealTrust:
        built = self._built
        if built is not None and built[0] > time.monotonic():
            return built[1]
        with self._lock:
            anchors: list[bytes] = []
            intermediates: list[bytes] = []
            for info in self._ca.list_cas():
                der = load_certificates(info.certificate_pem.encode())[0].dump()
                (anchors if info.parent_id is None else intermediates).append(der)
            for path in self._settings.trust_anchor_files:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise ConfigurationError(f"cannot read trust anchor file {path}") from exc
                anchors.extend(c.dump() for c in load_certificates(data))
            trust = SealTrust(
                PathValidator(anchors, clock=self._clock),
                self._ca_status,
                self._clock,
                intermediates=intermediates,
                registry=self._registry,
                cache_seconds=self._refresh,
            )
            self._built = (time.monotonic() + self._refresh, trust)
            return trust

    def status(
        self, certificate: bytes, at: datetime, revocation: RevocationInput = NO_REVOCATION_DATA
    ) -> CertificateStatus:
        """``seals.service.CertificateStatusSource``: what verification would find."""
        return self.trust().status(certificate, at, revocation)

    def verify_seal(
        self,
        eseal: bytes,
        at: datetime | None = None,
        *,
        revocation: RevocationInput = NO_REVOCATION_DATA,
    ) -> VerificationResult:
        context = self.trust().with_revocation(revocation)
        return verify_seal(eseal, at=at or self._clock.now(), context=context)

    def verify_signature(
        self,
        signature: bytes,
        *,
        original: bytes | None = None,
        original_sm3: bytes | None = None,
        revocation: RevocationInput = NO_REVOCATION_DATA,
    ) -> VerificationResult:
        return verify_signature(
            signature,
            original=original,
            original_sm3=original_sm3,
            context=self.trust().with_revocation(revocation),
        )
