"""The production seal service (SQL registry, maker key in the key store certified by
the service's CA, certificate status from the CA's records) and seal verification with
the service's trust anchors."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from asn1crypto import x509

from ca.certs import certificate_pem, serial_hex
from ca.service import CertificateAuthority
from keystore.service import KeyStore
from seals.maker import MakerConfig, SealMaker
from seals.service import (
    CertificateStatus,
    SealPolicy,
    SealService,
    SignerSource,
    Timestamper,
)
from seals.store import SqlSealStore
from seals.validation import SealRegistry, SealTrust
from seals.verify import VerificationResult, verify_seal, verify_signature
from trust.auth import AuditSink
from trust.clock import Clock
from trust.db import Database
from trust.errors import CertificateNotFound, ConfigurationError
from trust.settings import Settings
from trust.validation import PathValidator
from trust.validation.certs import load_certificates


class CaCertificateStatus:
    """Revocation of certificates this service's CA issued, from its records (the same
    data its CRLs and OCSP answers come from); None for certificates it did not issue."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    def status(self, certificate: bytes) -> CertificateStatus | None:
        cert = x509.Certificate.load(certificate)
        try:
            info = self._ca.get_certificate(serial_hex(cert.serial_number))
        except CertificateNotFound:
            return None
        if info.certificate_pem != certificate_pem(certificate):
            return None  # same serial, another certificate: not one of ours
        if info.status in ("revoked", "on_hold"):
            return CertificateStatus(True, info.revoked_at, info.revocation_reason)
        return CertificateStatus(False, None, None)


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
    signers: SignerSource,
    timestamper: Timestamper | None = None,
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
        signers=signers,
        certificate_status=CaCertificateStatus(ca),
        timestamper=timestamper,
    )


class SealVerifier:
    """Seal and stamp verification with the service's trust: its root CAs and the
    configured anchor files as anchors, its issuing CAs as intermediates, its CA's
    records for revocation and its registry for seal status. The anchors are re-read
    every ``refresh_seconds`` (a CA created meanwhile becomes trusted then)."""

    def __init__(
        self,
        settings: Settings,
        ca: CertificateAuthority,
        clock: Clock,
        registry: SealRegistry | None,
        *,
        refresh_seconds: float = 300.0,
    ) -> None:
        self._settings = settings
        self._ca = ca
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
                CaCertificateStatus(self._ca),
                self._clock,
                intermediates=intermediates,
                registry=self._registry,
                cache_seconds=self._refresh,
            )
            self._built = (time.monotonic() + self._refresh, trust)
            return trust

    def verify_seal(self, eseal: bytes, at: datetime | None = None) -> VerificationResult:
        return verify_seal(eseal, at=at or self._clock.now(), context=self.trust())

    def verify_signature(
        self,
        signature: bytes,
        *,
        original: bytes | None = None,
        original_sm3: bytes | None = None,
    ) -> VerificationResult:
        return verify_signature(
            signature, original=original, original_sm3=original_sm3, context=self.trust()
        )
