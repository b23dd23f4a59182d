"""The certificate authority service: CA hierarchy, issuance, renewal and rekey,
revocation, CRLs and OCSP, over one ``CertificateStore`` and one ``CaKeySource``.

The hierarchy is two levels: self-signed roots and issuing CAs directly under a
root (pathLenConstraint 0), which issue end-entity certificates.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asn1crypto import x509

from ca.certs import (
    alt_names_of,
    certificate_pem,
    load_certificate,
    name_attributes,
    name_text,
    parse_serial_hex,
    serial_hex,
)
from ca.crl import CrlResult, RevocationReason, Revoker, build_crl
from ca.dual import DualIssuer, DualIssueRequest, DualIssueResult, EscrowKeySource, RecoveredKey
from ca.issue import CaUrls, Issuer, IssueRequest, IssueResult
from ca.ocsp import OcspResponder, Responder
from ca.profiles import Profile, get_profile
from ca.signer import CaKeySource
from ca.store import (
    ISSUED,
    RESERVED,
    AuthorityRecord,
    CertificateRecord,
    CertificateStore,
    RetiredGeneration,
)
from trust.audit.attempts import audited
from trust.auth import AuditSink
from trust.clock import Clock
from trust.coordination import Coordination
from trust.errors import BadRequest, CaNameTaken, CaUnusable, TrustError
from trust.keys import KeyAlgorithm
from trust.settings import Settings

# A responder certificate is replaced once less than this share of its life is left.
_OCSP_RENEW_FRACTION = 3
# Who the audit log names when no caller is given (start-up, OCSP-driven work).
SYSTEM_ACTOR = "ca-service"
# Coordination channel of certificate status changes (revocation, hold, release).
STATUS_CHANNEL = "ca:status"
log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class CreateCaRequest:
    name: str
    algorithm: KeyAlgorithm = KeyAlgorithm.SM2
    parent_id: str | None = None  # None: a self-signed root
    subject: Mapping[str, str] | None = None  # default: C=CN, O=<organization>, CN=<name>
    validity_days: int | None = None
    organization: str = "Trust Service"


@dataclass(frozen=True)
class CaInfo:
    id: str
    name: str
    parent_id: str | None
    algorithm: str
    key_id: str
    serial_hex: str
    subject: str
    not_before: datetime
    not_after: datetime
    certificate_pem: str
    generation: int = 1  # of the CA's current key (2 after its first rollover...)


@dataclass(frozen=True)
class RolloverResult:
    ca: CaInfo  # with the new key and certificate
    previous_generation: int
    new_with_old: bytes | None  # the new key certified by the old one (DER)
    old_with_new: bytes | None  # the old key certified by the new one (DER)


@dataclass(frozen=True)
class CertificateInfo:
    serial_hex: str
    ca_id: str
    status: str  # reserved | good | on_hold | revoked
    profile: str
    subject: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    replaces: str | None
    certificate_pem: str | None


def _certificate_info(record: CertificateRecord) -> CertificateInfo:
    if record.state == RESERVED:
        status = "reserved"
    elif record.revocation_reason == RevocationReason.CERTIFICATE_HOLD:
        status = "on_hold"
    elif record.revoked_at is not None:
        status = "revoked"
    else:
        status = "good"
    return CertificateInfo(
        serial_hex=record.serial,
        ca_id=record.ca_id,
        status=status,
        profile=record.profile,
        subject=record.subject,
        not_before=record.not_before,
        not_after=record.not_after,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
        replaces=record.replaces,
        certificate_pem=None if record.der is None else certificate_pem(record.der),
    )


def _ca_info(ca: AuthorityRecord) -> CaInfo:
    if ca.certificate is None or ca.certificate_serial is None:
        raise CaUnusable(f"CA {ca.id} has no certificate")
    cert = x509.Certificate.load(ca.certificate)
    return CaInfo(
        id=ca.id,
        name=ca.name,
        parent_id=ca.parent_id,
        algorithm=ca.algorithm,
        key_id=ca.key_id,
        serial_hex=ca.certificate_serial,
        subject=name_text(cert.subject),
        not_before=cert.not_valid_before,
        not_after=cert.not_valid_after,
        certificate_pem=certificate_pem(ca.certificate),
        generation=ca.generation,
    )


class CertificateAuthority:
    def __init__(
        self,
        store: CertificateStore,
        keys: CaKeySource,
        clock: Clock,
        urls: CaUrls,
        *,
        crl_validity: timedelta = timedelta(hours=24),
        ocsp_cache_seconds: float = 300.0,
        audit: AuditSink | None = None,
        escrow: EscrowKeySource | None = None,
        coordination: Coordination | None = None,
        ocsp_status_seconds: float = 0.0,
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._audit = audit
        self._crl_validity = crl_validity
        self._issuer = Issuer(store, keys, clock, urls)
        self._revoker = Revoker(store, clock)
        self._dual = None if escrow is None else DualIssuer(store, self._issuer, escrow)
        self._ocsp = OcspResponder(
            store,
            self.ensure_ocsp_signer,
            clock,
            cache_ttl=ocsp_cache_seconds,
            status_ttl=ocsp_status_seconds,
        )
        self._coordination = coordination
        self._subscription = None
        if coordination is not None:
            # Revocations in other workers (and trustctl) drop this worker's OCSP answers.
            self._subscription = coordination.subscribe(
                STATUS_CHANNEL, lambda _: self._ocsp.status_changed()
            )
        self._rollover_lock = threading.Lock()
        self._ocsp_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        store: CertificateStore,
        keys: CaKeySource,
        clock: Clock,
        settings: Settings,
        audit: AuditSink | None = None,
        escrow: EscrowKeySource | None = None,
        coordination: Coordination | None = None,
    ) -> CertificateAuthority:
        return cls(
            store,
            keys,
            clock,
            CaUrls.from_settings(settings),
            crl_validity=timedelta(hours=settings.ca_crl_validity_hours),
            ocsp_cache_seconds=settings.ca_ocsp_cache_seconds,
            audit=audit,
            escrow=escrow,
            coordination=coordination,
            ocsp_status_seconds=settings.ca_ocsp_status_seconds,
        )

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def _audited(
        self,
        actor: str,
        action: str,
        target: str | None,
        run: Callable[[], _T],
        details: Callable[[_T], Mapping[str, Any]],
    ) -> _T:
        """Run one state-changing operation and record it, refusals included (with their
        code), so the log shows every attempt to issue or revoke, not just successes."""
        if self._audit is None:
            return run()
        return audited(self._audit, actor, action, target, run, details)

    # --- CAs -----------------------------------------------------------------------

    def create_ca(self, request: CreateCaRequest, *, actor: str = SYSTEM_ACTOR) -> CaInfo:
        return self._audited(
            actor,
            "ca.create",
            request.name,
            lambda: self._create_ca(request),
            lambda info: {
                "ca_id": info.id,
                "algorithm": info.algorithm,
                "parent_id": info.parent_id,
            },
        )

    def _create_ca(self, request: CreateCaRequest) -> CaInfo:
        algorithm = KeyAlgorithm(request.algorithm)
        parent = None
        if request.parent_id is not None:
            parent = self._store.get_authority(request.parent_id)
            if parent.parent_id is not None:
                raise BadRequest("issuing CAs are created directly under a root CA")
        if self._store.authority_by_name(request.name) is not None:
            raise CaNameTaken(f"a CA named {request.name!r} exists")
        profile = get_profile("root_ca" if parent is None else "issuing_ca")
        subject = dict(request.subject or {})
        if not subject:
            subject = {"C": "CN", "O": request.organization, "CN": request.name}
        signer = self._keys.generate(algorithm, request.name, "ca")
        now = self._clock.now()
        ca = AuthorityRecord(
            id="ca_" + secrets.token_hex(8),
            name=request.name,
            parent_id=request.parent_id,
            key_id=signer.key_id,
            algorithm=algorithm.value,
            certificate_serial=None,
            certificate=None,
            ocsp_key_id=None,
            ocsp_certificate=None,
            crl_number=0,
            crl=None,
            crl_next_update=None,
            created_at=now,
        )
        self._store.add_authority(ca)
        validity = _ca_validity(profile, request.validity_days)
        result = self._issuer.sign_new(
            ca=parent or ca,
            subject=subject,
            spki_der=signer.spki_der,
            profile=profile,
            validity=validity,
            self_signed=parent is None,
        )
        updated = self._store.update_authority(
            ca.id, certificate=result.certificate_der, certificate_serial=result.serial_hex
        )
        return _ca_info(updated)

    def list_cas(self) -> list[CaInfo]:
        return [_ca_info(ca) for ca in self._store.list_authorities() if ca.certificate]

    def get_ca(self, ca_id: str) -> CaInfo:
        return _ca_info(self._store.get_authority(ca_id))

    def chain(self, ca_id: str, generation: int | None = None) -> list[bytes]:
        """DER certificates of ``ca_id`` (its key ``generation``, default the current one)
        up to the root key that certified it, the CA's own first."""
        return self._issuer.chain(ca_id, generation)

    def certificate(self, ca_id: str, generation: int | None = None) -> bytes:
        """The DER certificate of ``ca_id``'s key ``generation`` (default: current)."""
        ca = self._store.authority_generation(ca_id, generation)
        if ca.certificate is None:
            raise CaUnusable(f"CA {ca.id} has no certificate")
        return ca.certificate

    def key_certificates(self, ca_id: str) -> list[bytes]:
        """The DER certificates of every key ``ca_id`` has had, first key first: what the
        plain caIssuers URL serves once there is more than one (see ``api/routers/ca.py``)."""
        ca = self._store.get_authority(ca_id)
        if ca.certificate is None:
            raise CaUnusable(f"CA {ca.id} has no certificate")
        return [r.certificate for r in self._store.retired_generations(ca_id)] + [ca.certificate]

    def rollover(
        self, ca_id: str, *, validity_days: int | None = None, actor: str = SYSTEM_ACTOR
    ) -> RolloverResult:
        """A new key and certificate for ``ca_id``: new issuance, CRLs and OCSP answers use
        the new key; the old key keeps signing the CRLs and OCSP answers of what it
        issued. Link certificates (old key signs new, new key signs old; RFC 4210 §4.4)
        let relying parties that trust either root key reach the other's certificates."""
        return self._audited(
            actor,
            "ca.rollover",
            ca_id,
            lambda: self._rollover(ca_id, validity_days),
            lambda result: {
                "generation": result.ca.generation,
                "key_id": result.ca.key_id,
                "serial_hex": result.ca.serial_hex,
                "new_with_old_serial_hex": _serial_of(result.new_with_old),
                "old_with_new_serial_hex": _serial_of(result.old_with_new),
            },
        )

    def _rollover(self, ca_id: str, validity_days: int | None) -> RolloverResult:
        with self._rollover_lock:
            old = self._store.get_authority(ca_id)
            if old.certificate is None or old.certificate_serial is None:
                raise CaUnusable(f"CA {ca_id} has no certificate")
            old_cert = x509.Certificate.load(old.certificate)
            profile = get_profile("root_ca" if old.parent_id is None else "issuing_ca")
            validity = _ca_validity(profile, validity_days)
            subject = name_attributes(old_cert.subject)
            signer = self._keys.generate(KeyAlgorithm(old.algorithm), old.name, "ca")
            new = replace(
                old,
                key_id=signer.key_id,
                certificate=None,
                certificate_serial=None,
                generation=old.generation + 1,
            )
            if old.parent_id is None:
                issued = self._issuer.sign_new(
                    ca=new,
                    subject=subject,
                    spki_der=signer.spki_der,
                    profile=profile,
                    validity=validity,
                    self_signed=True,
                )
            else:
                issued = self._issuer.sign_new(
                    ca=self._store.get_authority(old.parent_id),
                    subject=subject,
                    spki_der=signer.spki_der,
                    profile=profile,
                    validity=validity,
                )
            new = replace(
                new, certificate=issued.certificate_der, certificate_serial=issued.serial_hex
            )
            new_with_old = old_with_new = None
            left = old_cert.not_valid_after - self._clock.now()
            if left > timedelta(0):  # links make sense while the old certificate is valid
                new_with_old = self._issuer.sign_new(
                    ca=old,
                    subject=subject,
                    spki_der=signer.spki_der,
                    profile=profile,
                    validity=left,
                    include_chain=False,
                ).certificate_der
                old_with_new = self._issuer.sign_new(
                    ca=new,
                    subject=subject,
                    spki_der=old_cert.public_key.dump(),
                    profile=profile,
                    validity=left,
                    include_chain=False,
                ).certificate_der
            retired = RetiredGeneration(
                ca_id=old.id,
                generation=old.generation,
                key_id=old.key_id,
                certificate_serial=old.certificate_serial,
                certificate=old.certificate,
                ocsp_key_id=old.ocsp_key_id,
                ocsp_certificate=old.ocsp_certificate,
                crl=old.crl,
                crl_next_update=old.crl_next_update,
                new_with_old=new_with_old,
                old_with_new=old_with_new,
                retired_at=self._clock.now(),
            )
            updated = self._store.roll_over(
                retired,
                key_id=new.key_id,
                certificate=new.certificate,
                certificate_serial=new.certificate_serial,
                ocsp_key_id=None,
                ocsp_certificate=None,
                crl=None,
                crl_next_update=None,
            )
            self._issuer.forget(ca_id)
            return RolloverResult(_ca_info(updated), old.generation, new_with_old, old_with_new)

    # --- certificates ----------------------------------------------------------------

    def issue(self, request: IssueRequest, *, actor: str = SYSTEM_ACTOR) -> IssueResult:
        return self._audited(
            actor,
            "certificate.issue",
            request.ca_id,
            lambda: self._issuer.issue(request),
            _issued_details,
        )

    def issue_dual(
        self, request: DualIssueRequest, *, actor: str = SYSTEM_ACTOR
    ) -> DualIssueResult:
        """A signing certificate from the request's CSR and an encryption certificate for a
        key generated and escrowed by the key store, its private key as an envelope."""
        return self._audited(
            actor,
            "certificate.issue_dual",
            request.ca_id,
            lambda: self._dual_issuer().issue(request),
            lambda result: {
                "signing_serial_hex": result.signing.serial_hex,
                "encryption_serial_hex": result.encryption.serial_hex,
                "escrow_key_id": result.escrow_key_id,
                "profile": result.signing.profile,
            },
        )

    def recover_key(
        self,
        serial_hex: str,
        *,
        recipient_serial_hex: str | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> RecoveredKey:
        """The escrowed key of an encryption certificate, again only as an envelope."""
        return self._audited(
            actor,
            "certificate.recover_key",
            serial_hex,
            lambda: self._dual_issuer().recover(
                parse_serial_hex(serial_hex),
                None if recipient_serial_hex is None else parse_serial_hex(recipient_serial_hex),
                actor,
            ),
            lambda result: {"recipient_serial_hex": result.recipient_serial_hex},
        )

    def _dual_issuer(self) -> DualIssuer:
        if self._dual is None:
            raise CaUnusable("this CA has no key escrow")
        return self._dual

    def renew(
        self, serial_hex: str, validity_days: int | None = None, *, actor: str = SYSTEM_ACTOR
    ) -> IssueResult:
        """A new certificate for the same key, subject, names and profile."""

        def run() -> IssueResult:
            record, cert = self._issued(serial_hex)
            return self._issuer.issue(
                self._successor(record, cert, cert.public_key.dump(), None, validity_days)
            )

        return self._audited(actor, "certificate.renew", serial_hex, run, _issued_details)

    def rekey(
        self,
        serial_hex: str,
        *,
        csr: bytes | None = None,
        public_key: bytes | None = None,
        validity_days: int | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> IssueResult:
        """A new certificate for a new key (from ``csr``, proof of possession checked, or
        ``public_key``), keeping the old certificate's subject, names and profile."""

        def run() -> IssueResult:
            record, cert = self._issued(serial_hex)
            if public_key is not None and csr is not None:
                raise BadRequest("give a certificate request or a public key, not both")
            return self._issuer.issue(self._successor(record, cert, public_key, csr, validity_days))

        return self._audited(actor, "certificate.rekey", serial_hex, run, _issued_details)

    def _issued(self, serial_hex: str) -> tuple[CertificateRecord, x509.Certificate]:
        record = self._store.get(parse_serial_hex(serial_hex))
        if record.state != ISSUED or record.der is None:
            raise CaUnusable(f"certificate {record.serial} was never issued")
        return record, load_certificate(record.der)

    @staticmethod
    def _successor(
        record: CertificateRecord,
        cert: x509.Certificate,
        public_key: bytes | None,
        csr: bytes | None,
        validity_days: int | None,
    ) -> IssueRequest:
        if public_key is None and csr is None:
            raise BadRequest("rekey needs a certificate request or a public key")
        san = [f"{n.kind}:{n.value}" for n in alt_names_of(cert["tbs_certificate"]["extensions"])]
        return IssueRequest(
            ca_id=record.ca_id,
            profile=record.profile,
            csr=csr,
            public_key=public_key,
            subject=name_attributes(cert.subject),
            san=san,
            validity_days=validity_days,
            replaces=record.serial,
        )

    def get_certificate(self, serial_hex: str) -> CertificateInfo:
        return _certificate_info(self._store.get(parse_serial_hex(serial_hex)))

    def list_certificates(
        self,
        *,
        ca_id: str | None = None,
        subject: str | None = None,
        status: str | None = None,
        profile: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[CertificateInfo]:
        records = self._store.list_certificates(
            ca_id=ca_id,
            subject=subject,
            status={"good": ISSUED}.get(status or "", status),
            profile=profile,
            offset=offset,
            limit=limit,
        )
        return [_certificate_info(r) for r in records]

    # --- revocation, CRL, OCSP ----------------------------------------------------------

    def revoke(
        self,
        serial_hex: str,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        *,
        actor: str = SYSTEM_ACTOR,
    ) -> CertificateInfo:
        def run() -> CertificateInfo:
            parsed = (
                reason if isinstance(reason, RevocationReason) else RevocationReason.parse(reason)
            )
            before = self._store.get(parse_serial_hex(serial_hex))
            record = self._revoker.revoke(before.serial, parsed)
            if record != before:
                self._crl_stale(record)
            return _certificate_info(record)

        return self._audited(actor, "certificate.revoke", serial_hex, run, _status_details)

    def release_hold(self, serial_hex: str, *, actor: str = SYSTEM_ACTOR) -> CertificateInfo:
        def run() -> CertificateInfo:
            before = self._store.get(parse_serial_hex(serial_hex))
            record = self._revoker.release_hold(before.serial)
            if record != before:
                self._crl_stale(record)
            return _certificate_info(record)

        return self._audited(actor, "certificate.release_hold", serial_hex, run, _status_details)

    def _crl_stale(self, record: CertificateRecord) -> None:
        # The next current_crl() makes a fresh CRL instead of serving the stored one, and
        # OCSP answers kept without a status read go, here and in every other worker.
        self._store.update_generation(record.ca_id, record.ca_generation, crl_next_update=None)
        self._ocsp.status_changed()
        if self._coordination is not None:
            try:
                self._coordination.publish(STATUS_CHANNEL, record.serial)
            except TrustError:
                # The change is committed; other workers catch up within the status TTL.
                log.warning("could not broadcast the status change of %s", record.serial)

    def crl(
        self, ca_id: str, *, generation: int | None = None, actor: str = SYSTEM_ACTOR
    ) -> CrlResult:
        """A new full CRL for ``ca_id``'s key ``generation`` (default: current), numbered
        (one sequence per CA, across its keys), stored and returned."""
        return self._audited(
            actor,
            "crl.issue",
            ca_id,
            lambda: self._new_crl(ca_id, generation),
            lambda crl: {
                "number": crl.number,
                "next_update": crl.next_update.isoformat(),
                "generation": crl.generation,
            },
        )

    def _new_crl(self, ca_id: str, generation: int | None) -> CrlResult:
        ca = self._store.authority_generation(ca_id, generation)
        number = self._store.next_crl_number(ca_id)
        result = build_crl(
            ca=ca,
            store=self._store,
            signer=self._keys.signer(ca.key_id),
            number=number,
            now=self._clock.now(),
            validity=self._crl_validity,
        )
        self._store.update_generation(
            ca_id, ca.generation, crl=result.der, crl_next_update=result.next_update
        )
        return result

    def current_crl(self, ca_id: str, generation: int | None = None) -> bytes:
        """The stored CRL of key ``generation`` (default: current), or a new one when none
        is stored, one is due, or a status changed."""
        ca = self._store.authority_generation(ca_id, generation)
        if ca.crl is None or ca.id in self.crl_due(only=[ca]):
            return self.crl(ca_id, generation=ca.generation).der
        return ca.crl

    def retired_crls_due(self, margin: timedelta | None = None) -> list[tuple[str, int]]:
        """(CA id, generation) of retired keys whose CRL is due, as ``crl_due`` decides,
        while their certificate is valid (after it, everything they signed has expired)."""
        now = self._clock.now()
        due = []
        for view in self._store.signing_keys():
            if view.generation == self._store.get_authority(view.id).generation:
                continue
            assert view.certificate is not None
            if x509.Certificate.load(view.certificate).not_valid_after <= now:
                continue
            if self.crl_due(margin, only=[view]):
                due.append((view.id, view.generation))
        return due

    def crl_due(
        self, margin: timedelta | None = None, *, only: Sequence[AuthorityRecord] | None = None
    ) -> list[str]:
        """Ids of CAs whose CRL is missing, stale, or within ``margin`` (default a quarter
        of the CRL validity) of its nextUpdate: what a scheduler should refresh."""
        margin = self._crl_validity / 4 if margin is None else margin
        limit = self._clock.now() + margin
        cas = self._store.list_authorities() if only is None else only
        return [
            ca.id
            for ca in cas
            if ca.certificate is not None
            and (ca.crl_next_update is None or ca.crl_next_update <= limit)
        ]

    def ocsp(self, request_der: bytes) -> bytes:
        return self._ocsp.respond(request_der)

    def ocsp_cached(self, request_der: bytes) -> bytes | None:
        """The kept answer to a repeated nonce-less OCSP request, or None; no I/O."""
        return self._ocsp.cached(request_der)

    def ensure_ocsp_signer(self, ca_id: str, generation: int | None = None) -> Responder:
        """The delegated OCSP responder of the CA's key ``generation`` (default: current),
        made (or replaced near its end) on demand, certified by that key."""
        with self._ocsp_lock:
            ca = self._store.authority_generation(ca_id, generation)
            if ca.certificate is None:
                raise CaUnusable(f"CA {ca.id} has no certificate")
            if ca.ocsp_certificate is not None and ca.ocsp_key_id is not None:
                cert = x509.Certificate.load(ca.ocsp_certificate)
                left = cert.not_valid_after - self._clock.now()
                life = cert.not_valid_after - cert.not_valid_before
                if left > life / _OCSP_RENEW_FRACTION:
                    return self._responder(ca)
            profile = get_profile("ocsp")
            signer = self._keys.generate(KeyAlgorithm(ca.algorithm), f"{ca.name} OCSP", "ocsp")
            ca_subject = name_attributes(x509.Certificate.load(ca.certificate).subject)
            subject = {k: v for k, v in ca_subject.items() if k in profile.allowed_subject}
            subject["common_name"] = f"{ca.name} OCSP Responder"
            result = self._issuer.sign_new(
                ca=ca,
                subject=subject,
                spki_der=signer.spki_der,
                profile=profile,
                validity=profile.default_validity,
            )
            ca = self._store.update_generation(
                ca.id,
                ca.generation,
                ocsp_key_id=signer.key_id,
                ocsp_certificate=result.certificate_der,
            )
            if self._audit is not None:
                self._audit.append(
                    SYSTEM_ACTOR,
                    "ca.ocsp_responder",
                    target=ca.id,
                    details={"serial_hex": result.serial_hex, "key_id": signer.key_id},
                )
            return self._responder(ca)

    def _responder(self, ca: AuthorityRecord) -> Responder:
        assert ca.certificate is not None and ca.ocsp_certificate is not None
        assert ca.ocsp_key_id is not None
        return Responder(
            ca=ca,
            ca_certificate=x509.Certificate.load(ca.certificate),
            signer=self._keys.signer(ca.ocsp_key_id),
            signer_certificate=x509.Certificate.load(ca.ocsp_certificate),
        )


def _ca_validity(profile: Profile, days: int | None) -> timedelta:
    validity = profile.default_validity if days is None else timedelta(days=days)
    return min(validity, profile.max_validity)


def _serial_of(der: bytes | None) -> str | None:
    return None if der is None else serial_hex(x509.Certificate.load(der).serial_number)


def _issued_details(result: IssueResult) -> Mapping[str, Any]:
    return {
        "serial_hex": result.serial_hex,
        "profile": result.profile,
        "not_after": result.not_after.isoformat(),
    }


def _status_details(info: CertificateInfo) -> Mapping[str, Any]:
    return {"status": info.status, "reason": info.revocation_reason}


def ensure_default_hierarchy(ca: CertificateAuthority, settings: Settings) -> list[CaInfo]:
    """On a fresh store, create the default SM2 root and issuing CA and an ECDSA P-256 pair
    beside them (names from settings); on later calls return the existing ones. Safe to
    run from two processes at once: a name taken meanwhile is read back."""
    plan = (
        (settings.ca_default_sm2_root_name, settings.ca_default_sm2_issuing_name, KeyAlgorithm.SM2),
        (
            settings.ca_default_ecdsa_root_name,
            settings.ca_default_ecdsa_issuing_name,
            KeyAlgorithm.ECDSA_P256,
        ),
    )
    result = []
    for root_name, issuing_name, algorithm in plan:
        root = _ensure_ca(
            ca, CreateCaRequest(root_name, algorithm, organization=settings.ca_default_organization)
        )
        result.append(root)
        result.append(
            _ensure_ca(
                ca,
                CreateCaRequest(
                    issuing_name,
                    algorithm,
                    parent_id=root.id,
                    organization=settings.ca_default_organization,
                ),
            )
        )
    return result


def _ensure_ca(ca: CertificateAuthority, request: CreateCaRequest) -> CaInfo:
    existing = next((c for c in ca.list_cas() if c.name == request.name), None)
    if existing is not None:
        return existing
    try:
        return ca.create_ca(request)
    except CaNameTaken:
        found = next((c for c in ca.list_cas() if c.name == request.name), None)
        if found is None:  # created by another process but not yet certified
            raise
        return found
