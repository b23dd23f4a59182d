"""The production seal service: SQL registry, maker key in the key store certified by the
service's CA, certificate status from the CA's records."""

from __future__ import annotations

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
from trust.auth import AuditSink
from trust.clock import Clock
from trust.db import Database
from trust.errors import CertificateNotFound
from trust.settings import Settings


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
