"""Revocation (RFC 5280 reasons, certificateHold and its release) and full CRLs.

Revoking is idempotent: the same reason again returns the record unchanged.
A certificate on hold may be revoked for a permanent reason or released; a
permanently revoked one stays as it is (``CertificateAlreadyRevoked`` for a
different reason). Released certificates simply drop out of the next full CRL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from asn1crypto import crl, x509

from ca.certs import key_identifier, x509_time
from ca.signer import CaKeySigner, signature_algorithm
from ca.store import AuthorityRecord, CertificateRecord, RevocationStore, StatusReader
from trust.clock import Clock
from trust.errors import (
    BadRequest,
    CaUnusable,
    CertificateAlreadyRevoked,
    CertificateNotOnHold,
)


class RevocationReason(StrEnum):
    """RFC 5280 §5.3.1 CRLReason, by asn1crypto's names (removeFromCRL is no reason to revoke)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    CERTIFICATE_HOLD = "certificate_hold"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"
    AA_COMPROMISE = "aa_compromise"

    @classmethod
    def parse(cls, text: str) -> RevocationReason:
        """Accepts ``key_compromise``, ``keyCompromise`` or ``key-compromise``."""
        snake = "".join("_" + c.lower() if c.isupper() else c for c in text).replace("-", "_")
        try:
            return cls(snake.strip("_"))
        except ValueError:
            raise BadRequest(f"unknown revocation reason {text!r}") from None


class Revoker:
    """Changes revocation status. Sees only the revocation part of the store."""

    def __init__(self, store: RevocationStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def revoke(
        self, serial: str, reason: RevocationReason, when: datetime | None = None
    ) -> CertificateRecord:
        record = self._store.get(serial)
        if record.revocation_reason is not None:
            current = RevocationReason(record.revocation_reason)
            if current is reason:
                return record
            if current is not RevocationReason.CERTIFICATE_HOLD:
                raise CertificateAlreadyRevoked(
                    f"certificate {serial} is revoked ({current}); it cannot become {reason}"
                )
            # From hold to a permanent reason: the original revocation time stands (RFC 5280).
            return self._store.set_revocation(serial, record.revoked_at, reason.value)
        revoked_at = (when or self._clock.now()).replace(microsecond=0)
        return self._store.set_revocation(serial, revoked_at, reason.value)

    def release_hold(self, serial: str) -> CertificateRecord:
        record = self._store.get(serial)
        if record.revocation_reason is None:
            return record  # already released (or never held): nothing to do
        if record.revocation_reason != RevocationReason.CERTIFICATE_HOLD:
            raise CertificateNotOnHold(
                f"certificate {serial} is revoked ({record.revocation_reason}), not on hold"
            )
        return self._store.set_revocation(serial, None, None)


@dataclass(frozen=True)
class CrlResult:
    ca_id: str
    generation: int  # of the CA key that signed it
    number: int
    this_update: datetime
    next_update: datetime
    der: bytes


def build_crl(
    *,
    ca: AuthorityRecord,
    store: StatusReader,
    signer: CaKeySigner,
    number: int,
    now: datetime,
    validity: timedelta,
) -> CrlResult:
    """A full v2 CRL of the revoked, unexpired certificates that ``ca``'s key generation
    signed, signed by that key (AKI its key identifier): one CRL per key after a rollover."""
    if ca.certificate is None:
        raise CaUnusable(f"CA {ca.id} has no certificate")
    ca_cert = x509.Certificate.load(ca.certificate)
    this_update = now.replace(microsecond=0)
    next_update = this_update + validity
    entries = []
    for entry in store.revoked_entries(ca.id, this_update, ca.generation):
        extensions = []
        # RFC 5280 §5.3.1: omit reasonCode rather than write "unspecified".
        if entry.reason != RevocationReason.UNSPECIFIED:
            extensions.append(
                {"extn_id": "crl_reason", "critical": False, "extn_value": entry.reason}
            )
        revoked: dict[str, object] = {
            "user_certificate": int(entry.serial, 16),
            "revocation_date": x509_time(entry.revoked_at),
        }
        if extensions:
            revoked["crl_entry_extensions"] = extensions
        entries.append(revoked)
    algorithm = signature_algorithm(signer.algorithm)
    ski = ca_cert.key_identifier or key_identifier(ca_cert.public_key)
    tbs_fields: dict[str, object] = {
        "version": "v2",
        "signature": algorithm,
        "issuer": ca_cert.subject,
        "this_update": x509_time(this_update),
        "next_update": x509_time(next_update),
        "crl_extensions": [
            {
                "extn_id": "authority_key_identifier",
                "critical": False,
                "extn_value": {"key_identifier": ski},
            },
            {"extn_id": "crl_number", "critical": False, "extn_value": number},
        ],
    }
    if entries:  # an empty revokedCertificates must be absent, not an empty SEQUENCE
        tbs_fields["revoked_certificates"] = entries
    tbs = crl.TbsCertList(tbs_fields)
    signature = signer.sign(tbs.dump())
    der = crl.CertificateList(
        {"tbs_cert_list": tbs, "signature_algorithm": algorithm, "signature": signature}
    ).dump()
    return CrlResult(ca.id, ca.generation, number, this_update, next_update, der)
