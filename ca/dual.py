"""Dual certificates (GM/T 0015 双证书) with key escrow.

One request gives the subscriber two certificates from the same issuing CA: the signing
certificate for the key in their PKCS#10 request, and an encryption certificate
(profile ``encryption``) for an SM2 key pair that the key store generates and keeps in
escrow (purpose ``encrypt``), as a key-management centre does. The encryption private key
is returned only as a GM/T 0009 ``SM2EnvelopedKey`` for the signing certificate's public
key, made inside the key store; recovery from escrow returns such an envelope again.

The encryption certificate has the signing certificate's subject and those of its
alternative names the ``encryption`` profile allows (email), and the same validity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ca.certs import alt_names_of, load_certificate, name_attributes, parse_csr, public_key_info
from ca.issue import Issuer, IssueRequest, IssueResult
from ca.profiles import get_profile
from ca.store import ISSUED, CertificateStore
from trust.errors import (
    BadRequest,
    CertificateNotEscrowed,
    EscrowRecipientInvalid,
    ProfileKeyNotAllowed,
)
from trust.keys import KeyAlgorithm

ENCRYPTION_PROFILE = "encryption"


class EscrowKeySource(Protocol):
    """Escrowed SM2 encryption keys: made, and exported only as an envelope."""

    def generate_escrow_key(self, label: str) -> tuple[str, bytes]:
        """A new SM2 encryption key pair held in escrow: its key id and SPKI (DER)."""

    def export_enveloped(self, key_id: str, recipient_spki: bytes, admin: str | None) -> bytes:
        """DER ``SM2EnvelopedKey`` of the escrowed ``key_id`` for the SM2 key
        ``recipient_spki``: as the CA itself (``admin`` None, at issuance) or for the key
        administrator ``admin`` (recovery), audited by the key store under that name."""


@dataclass(frozen=True)
class DualIssueRequest:
    ca_id: str
    csr: bytes  # PKCS#10 for the subscriber's SM2 signing key
    profile: str = "person"  # of the signing certificate
    subject: dict[str, str] | None = None
    san: tuple[str, ...] | None = None
    validity_days: int | None = None


@dataclass(frozen=True)
class DualIssueResult:
    signing: IssueResult
    encryption: IssueResult
    escrow_key_id: str
    enveloped_key_der: bytes  # SM2EnvelopedKey for the signing certificate's key


@dataclass(frozen=True)
class RecoveredKey:
    serial_hex: str  # of the encryption certificate
    recipient_serial_hex: str  # the certificate whose key the envelope is for
    enveloped_key_der: bytes


class DualIssuer:
    def __init__(self, store: CertificateStore, issuer: Issuer, escrow: EscrowKeySource) -> None:
        self._store = store
        self._issuer = issuer
        self._escrow = escrow

    def issue(self, request: DualIssueRequest) -> DualIssueResult:
        signing_profile = get_profile(request.profile)
        if signing_profile.is_ca or request.profile == ENCRYPTION_PROFILE:
            raise BadRequest("the signing half of a dual pair needs an end-entity signing profile")
        # Everything about the request is checked before anything is stored.
        parsed = parse_csr(request.csr)
        if public_key_info(parsed.spki_der)[0].algorithm is not KeyAlgorithm.SM2:
            # The envelope is SM2-encrypted to this key (GM/T 0009).
            raise ProfileKeyNotAllowed("a dual pair needs an SM2 signing key")
        san = request.san
        if san is None:
            san = tuple(f"{n.kind}:{n.value}" for n in parsed.alt_names)
        signing = self._issuer.issue(
            IssueRequest(
                ca_id=request.ca_id,
                profile=request.profile,
                public_key=parsed.spki_der,
                subject=parsed.subject if request.subject is None else request.subject,
                san=san,
                validity_days=request.validity_days,
            ),
            complete=False,
        )
        signing_cert = load_certificate(signing.certificate_der)
        signing_spki = signing_cert.public_key.dump()
        key_id, spki = self._escrow.generate_escrow_key(f"escrow {signing.serial_hex}")
        allowed = get_profile(ENCRYPTION_PROFILE).san_allowed
        encryption = self._issuer.issue(
            IssueRequest(
                ca_id=request.ca_id,
                profile=ENCRYPTION_PROFILE,
                public_key=spki,
                subject=name_attributes(signing_cert.subject),
                san=[
                    f"{n.kind}:{n.value}"
                    for n in alt_names_of(signing_cert["tbs_certificate"]["extensions"])
                    if n.kind in allowed
                ],
                validity_days=max(1, (signing.not_after - signing.not_before).days),
            ),
            escrow_key_id=key_id,
            pair_serial=signing.serial_hex,
            complete=False,
        )
        envelope = self._escrow.export_enveloped(key_id, signing_spki, None)
        # Both certificates are issued in one transaction, after everything that can fail:
        # a failure before it leaves two reserved serials, never an issued certificate that
        # no one was given (and an escrowed key no certificate names).
        self._store.complete(
            (signing.serial_hex, signing.certificate_der),
            (encryption.serial_hex, encryption.certificate_der),
        )
        return DualIssueResult(signing, encryption, key_id, envelope)

    def recover(self, serial: str, recipient_serial: str | None, admin: str) -> RecoveredKey:
        """The escrowed key of encryption certificate ``serial``, enveloped for its signing
        certificate or for ``recipient_serial`` (another good SM2 certificate of this
        service, e.g. the subscriber's renewed signing certificate)."""
        record = self._store.get(serial)
        if record.escrow_key_id is None:
            raise CertificateNotEscrowed(f"certificate {serial} has no escrowed key")
        target = recipient_serial or record.pair_serial
        if target is None:
            raise EscrowRecipientInvalid(f"certificate {serial} names no signing certificate")
        recipient = self._store.get(target)
        if recipient.state != ISSUED or recipient.der is None:
            raise EscrowRecipientInvalid(f"certificate {target} was never issued")
        if recipient.revoked:
            raise EscrowRecipientInvalid(f"certificate {target} is revoked or on hold")
        if recipient.escrow_key_id is not None:
            raise EscrowRecipientInvalid("the envelope recipient must be a signing certificate")
        spki = load_certificate(recipient.der).public_key.dump()
        if public_key_info(spki)[0].algorithm is not KeyAlgorithm.SM2:
            raise EscrowRecipientInvalid("the envelope recipient must hold an SM2 key")
        envelope = self._escrow.export_enveloped(record.escrow_key_id, spki, admin)
        return RecoveredKey(record.serial, recipient.serial, envelope)
