"""The seal service: the GB/T 33481 lifecycle of seals (apply, approve, make, suspend,
resume, revoke, expire), stamping (GB/T 38540 SES_Signature v4) and the status of a
seal at any instant.

Every operation is audited under the caller's actor, refusals included (with their
code), and every status change is kept in the seal's history. Private keys stay in the
key store: the maker signs through ``SealMaker``, a signer through the ``SignerSource``
(the signer registry), so no key material enters this package.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from asn1crypto import x509

from ca.signer_store import ACTIVE as SIGNER_ACTIVE
from ca.signers import Timestamper
from keystore.model import Actor
from seals.build import build_seal, build_seal_info, build_signature, build_tbs_sign
from seals.cache import SEAL_CHANNEL, BroadcastCache
from seals.maker import SealMaker
from seals.parse import CertDigest
from seals.registry import (
    CertListKind,
    RegisteredSeal,
    SealRecord,
    SealStatus,
    StatusChange,
    check_transition,
)
from seals.store import SealStore
from trust.audit.attempts import audited
from trust.auth import AuditSink
from trust.clock import Clock
from trust.coordination import Coordination
from trust.errors import (
    Conflict,
    InvalidLength,
    NotFound,
    SealApprovalRefused,
    SealExpired,
    SealImageInvalid,
    SealMakerCertificateRevoked,
    SealNotActive,
    SealNotFound,
    ServiceUnavailable,
    SignerCertificateExpired,
    SignerCertificateRevoked,
    SignerNotInSeal,
    SignerRevocationUnknown,
    TimestampUnavailable,
    TrustError,
    UnsupportedAlgorithm,
    ValidationFailed,
)
from trust.keys import KeyAlgorithm, SM2PublicKey, load_public_key
from trust.sm3 import DIGEST_SIZE, sm3
from trust.validation import RevocationMode

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_ESID = re.compile(r"[0-9A-Za-z._-]{1,64}")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SVG_ROOT = re.compile(rb"\A(\xef\xbb\xbf)?\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<svg[\s>]", re.S)
MAX_PICTURE_BYTES = 256 * 1024
MAX_SIGNERS = 100
MAX_MM = 500
SYSTEM_ACTOR = "seal-service"


@dataclass(frozen=True)
class SealPolicy:
    required_approvals: int = 1
    type_codes: Mapping[str, int] = field(default_factory=lambda: {"official": 1})
    vendor_id: str = "TRUSTSVC"


@dataclass(frozen=True)
class ApplyRequest:
    """Exactly one of ``signer_certificates`` (DER) and ``signer_certificate_sm3`` (SM3
    digests of the DER certificates) lists who may stamp with the seal."""

    seal_type: str  # a name of SealPolicy.type_codes
    name: str
    organization: str
    picture: bytes = field(repr=False)
    picture_type: str  # PNG | SVG
    width_mm: int
    height_mm: int
    valid_start: datetime
    valid_end: datetime
    signer_certificates: tuple[bytes, ...] = field(default=(), repr=False)
    signer_certificate_sm3: tuple[bytes, ...] = ()
    esid: str | None = None  # default: a random UUID in hex


@dataclass(frozen=True)
class RevocationInput:
    """What a caller supplies to check certificates from CAs other than the service's:
    CRLs and OCSP responses (DER; nothing is fetched) and what missing data means, as for
    the signing service's verification (``soft-fail``: reported; ``require``, and
    ``hard-fail`` for a certificate naming a CRL or OCSP location: refused or
    INDETERMINATE; ``none``: not checked)."""

    crls: tuple[bytes, ...] = field(default=(), repr=False)
    ocsps: tuple[bytes, ...] = field(default=(), repr=False)
    mode: RevocationMode = RevocationMode.SOFT_FAIL


NO_REVOCATION_DATA = RevocationInput()


@dataclass(frozen=True)
class StampRequest:
    """Exactly one of ``data`` and ``data_sm3`` (its SM3 digest)."""

    esid: str
    signer_id: str
    property_info: str
    data: bytes | None = field(default=None, repr=False)
    data_sm3: bytes | None = None
    timestamp: bool = False
    revocation: RevocationInput = NO_REVOCATION_DATA  # for a signer certified elsewhere


@dataclass(frozen=True)
class StampResult:
    signature: bytes = field(repr=False)  # DER SES_Signature (v4)
    esid: str
    signer_id: str
    signing_time: datetime
    data_sm3: bytes
    timestamped: bool
    signer_revocation: CertificateStatus


@dataclass(frozen=True)
class StatusAnswer:
    esid: str
    at: datetime
    status: SealStatus | None  # None: the seal had not been applied for at that time
    valid_start: datetime
    valid_end: datetime


class StampSigner(Protocol):
    """What a stamp needs of a signer (``keystore.signer.KeystoreCmsSigner`` is one)."""

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    def sign(self, data: bytes) -> bytes: ...


class SignerState(Protocol):
    """What stamping reads of a signer record at every use (``ca.signer_store.SignerRecord``)."""

    @property
    def status(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    @property
    def certificate(self) -> bytes: ...


class SignerHandles(Protocol):
    """The signer registry: a signer handle for ``signer_id``, if ``actor`` may use it."""

    def cms_signer(self, signer_id: str, actor: Actor) -> StampSigner: ...


class SignerSource(SignerHandles, Protocol):
    def state(self, signer_id: str) -> SignerState:
        """The signer's record as stored now; ``SignerNotFound`` when there is none."""


class RevocationState(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"  # revoked or on hold
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CertificateStatus:
    state: RevocationState
    # Where the answer comes from ("CA records", "CRL", "OCSP"); for UNKNOWN, why.
    source: str
    revoked_at: datetime | None = None
    reason: str | None = None
    required: bool = False  # UNKNOWN where the caller's revocation mode requires data

    @property
    def revoked(self) -> bool:
        return self.state is RevocationState.REVOKED


class CertificateStatusSource(Protocol):
    def status(
        self, certificate: bytes, at: datetime, revocation: RevocationInput = NO_REVOCATION_DATA
    ) -> CertificateStatus:
        """The revocation status of a DER certificate at ``at``: from the CA's records for
        certificates the service issued, else from the CRLs and OCSP responses given."""


class SealService:
    def __init__(
        self,
        store: SealStore,
        maker: SealMaker,
        clock: Clock,
        audit: AuditSink,
        policy: SealPolicy,
        *,
        signers: SignerSource,
        certificate_status: CertificateStatusSource,
        timestamper: Timestamper | None = None,
        coordination: Coordination | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._maker = maker
        self._clock = clock
        self._audit = audit
        self._policy = policy
        self._signers = signers
        self._certificate_status = certificate_status
        self._timestamper = timestamper
        # Stamping reads the same seal again and again: kept until a change to it is
        # broadcast (by this service, in whichever process makes it) or cache_seconds.
        self._coordination = coordination
        # Entries hold the seal (its picture up to 256 KiB), hence the small bound.
        self._seals: BroadcastCache[str, SealRecord] | None = BroadcastCache.of(
            coordination, SEAL_CHANNEL, cache_seconds, size=64
        )
        # Verification and the public status check read a seal's history the same way
        # (a 1-tuple, so that "no such seal" is kept too).
        self._registered: BroadcastCache[str, tuple[RegisteredSeal | None]] | None = (
            BroadcastCache.of(coordination, SEAL_CHANNEL, cache_seconds, size=64)
        )
        # Signer handles by (signer id, actor, key, certificate): making one reads and
        # parses the key's public key; the signer record is still read at every use.
        self._handles: BroadcastCache[tuple[str, Actor, str, bytes], StampSigner] = BroadcastCache(
            60.0, size=256
        )

    @property
    def policy(self) -> SealPolicy:
        return self._policy

    # --- lifecycle -----------------------------------------------------------------

    def apply(self, request: ApplyRequest, *, actor: str) -> SealRecord:
        def run() -> SealRecord:
            record = self._new_record(request, actor)
            self._store.add(record, StatusChange(1, SealStatus.APPLIED, record.created_at, actor))
            self._forget(record.esid)  # an unknown esID may have been looked up before
            return record

        return self._audited(
            actor, "seal.apply", request.esid, run, lambda r: {"esid": r.esid, "type": r.type_name}
        )

    def approve(self, esid: str, *, actor: str) -> SealRecord:
        def run() -> SealRecord:
            record = self.get(esid)
            check_transition("approve", esid, record.status)
            if actor == record.applicant:
                raise SealApprovalRefused("the applicant cannot approve its own seal")
            try:
                approvals = self._store.approve(record, actor, self._clock.now())
            except Conflict:
                raise SealApprovalRefused(f"{actor} has already approved seal {esid}") from None
            current = self._store.get(esid)
            # Enough approvals, and not already moved on by an officer approving alongside.
            if len(approvals) < self._policy.required_approvals or (
                current.status is not SealStatus.APPLIED
            ):
                return current
            try:
                return self._change(current, "approve", actor)
            except Conflict:
                return self._store.get(esid)  # the concurrent approval recorded the status

        return self._audited(actor, "seal.approve", esid, run, _status_details)

    def make(self, esid: str, *, actor: str) -> SealRecord:
        def run() -> SealRecord:
            record = self.get(esid)
            check_transition("make", esid, record.status)
            maker, signer = self._maker.current(actor=actor)
            now = self._clock.now()
            status = self._certificate_status.status(maker.certificate, now)
            if status.revoked:
                raise SealMakerCertificateRevoked(
                    f"the seal maker's certificate {maker.serial} is revoked "
                    f"({status.reason or 'unspecified'}); no seal can be made with it"
                )
            info = build_seal_info(
                es_id=record.esid,
                vendor_id=self._policy.vendor_id,
                seal_type=record.type_code,
                name=record.name,
                certificates=record.signers
                if record.cert_list_kind is CertListKind.CERTIFICATES
                else (),
                cert_digests=[CertDigest("SM3", d) for d in record.signers]
                if record.cert_list_kind is CertListKind.DIGESTS
                else (),
                create_date=now,
                valid_start=record.valid_start,
                valid_end=record.valid_end,
                picture_type=record.picture_type,
                picture=record.picture,
                picture_width=record.width_mm,
                picture_height=record.height_mm,
            )
            eseal = build_seal(info, maker.certificate, signer.sign)
            changes = [StatusChange(0, SealStatus.MADE, now, actor)]
            if now >= record.valid_start:
                changes.append(StatusChange(0, SealStatus.ACTIVE, now, actor))
            return self._store_change(
                record, changes, {"eseal": eseal, "maker_serial": maker.serial}
            )

        return self._audited(actor, "seal.make", esid, run, _status_details)

    def suspend(self, esid: str, *, actor: str, reason: str | None = None) -> SealRecord:
        return self._transition("suspend", esid, actor, reason)

    def resume(self, esid: str, *, actor: str, reason: str | None = None) -> SealRecord:
        return self._transition("resume", esid, actor, reason)

    def revoke(self, esid: str, *, actor: str, reason: str | None = None) -> SealRecord:
        return self._transition("revoke", esid, actor, reason)

    def expire_due(self, *, limit: int = 1000) -> int:
        """Record the expiry of every seal past its validity; how many were recorded."""
        done = 0
        for record in self._store.due_for_expiry(self._clock.now(), limit):
            try:
                self._record_expiry(record)
            except Conflict:
                continue  # changed meanwhile; the next sweep sees it again
            done += 1
        return done

    # --- reading -------------------------------------------------------------------

    def get(self, esid: str) -> SealRecord:
        """The seal, with an expiry that is due recorded first."""
        record = self._store.get(esid)
        now = self._clock.now()
        if record.status is not SealStatus.EXPIRED and (
            record.effective_status(now) is SealStatus.EXPIRED
        ):
            try:
                return self._record_expiry(record)
            except Conflict:
                return self._store.get(esid)
        return record

    def list_seals(
        self,
        *,
        status: str | None = None,
        organization: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[SealRecord]:
        self.expire_due()
        return self._store.list_seals(
            status=status, organization=organization, offset=offset, limit=limit
        )

    def registered(self, esid: str) -> RegisteredSeal | None:
        """The seal made under ``esid`` and its history (for verification); None when the
        registry has no such seal."""
        cache = self._registered
        if cache is None:
            return self._store.registered(esid)
        found = cache.get(esid)
        if found is None:
            ticket = cache.ticket()
            found = (self._store.registered(esid),)
            cache.put(esid, found, ticket)
        return found[0]

    def history(self, esid: str) -> list[StatusChange]:
        self.get(esid)  # SealNotFound, and a due expiry recorded
        return self._store.history(esid)

    def status_at(self, esid: str, at: datetime | None = None) -> StatusAnswer:
        """The seal's status at ``at`` (default now), from its history: the same read
        verification makes (``registered``)."""
        if at is not None and at.utcoffset() is None:
            raise ValidationFailed("the time must carry a time zone")
        when = at or self._clock.now()
        seal = self.registered(esid)
        if seal is None:
            raise SealNotFound(f"no seal {esid}")
        return StatusAnswer(esid, when, seal.status_at(when), seal.valid_start, seal.valid_end)

    # --- stamping ------------------------------------------------------------------

    def stamp(self, request: StampRequest, actor: Actor) -> StampResult:
        """An SES_Signature v4 by ``request.signer_id`` with seal ``request.esid`` over
        the data (or its SM3), optionally with a timestamp over the signature value."""

        def run() -> StampResult:
            digest = _data_digest(request.data, request.data_sm3)
            if request.timestamp:
                if self._timestamper is None:
                    raise TimestampUnavailable("no time-stamp authority is configured")
                # Before signing: a signature refused its timestamp afterwards would already
                # be recorded by the key store.
                self._timestamper.check()
            now = _whole_second_up(self._clock.now())
            record, signer, revocation = self._stamping(
                request.esid, request.signer_id, actor, now, request.revocation
            )
            assert record.eseal is not None  # _stamping refuses a seal not made
            cert_der = signer.certificate.dump()
            tbs = build_tbs_sign(
                seal=record.eseal,
                time_info=now,
                data_hash=digest,
                property_info=_property_info(request.property_info),
            )
            timestamper = self._timestamper
            stamper = None
            if request.timestamp and timestamper is not None:

                def stamper(value: bytes) -> bytes:
                    try:
                        return timestamper("sm3", sm3(value))
                    except (NotFound, ServiceUnavailable) as exc:
                        # No unit, clock not synchronised: nothing the caller can fix.
                        raise TimestampUnavailable(f"the TSA cannot stamp: {exc.detail}") from None

            signature = build_signature(tbs, cert_der, signer.sign, stamper)
            return StampResult(
                signature,
                record.esid,
                request.signer_id,
                now,
                digest,
                stamper is not None,
                revocation,
            )

        return self._audited(
            actor.id,
            "seal.stamp",
            request.esid,
            run,
            lambda r: {
                "signer_id": r.signer_id,
                "data_sm3": r.data_sm3.hex(),
                "timestamped": r.timestamped,
                "signer_revocation": f"{r.signer_revocation.state}: {r.signer_revocation.source}",
            },
        )

    def stamping_signer(
        self,
        esid: str,
        signer_id: str,
        actor: Actor,
        revocation: RevocationInput = NO_REVOCATION_DATA,
    ) -> tuple[SealRecord, StampSigner]:
        """The seal and the signer for a stamp made now whose signature is not an
        SES_Signature (a PDF signature), after the checks every stamp passes: the seal is
        active, the signer is listed in it, its certificate valid and not revoked."""
        record, signer, _ = self._stamping(esid, signer_id, actor, self._clock.now(), revocation)
        return record, signer

    def _stamping(
        self, esid: str, signer_id: str, actor: Actor, now: datetime, revocation: RevocationInput
    ) -> tuple[SealRecord, StampSigner, CertificateStatus]:
        record = self._seal(esid)
        status = record.effective_status(now)
        if status is SealStatus.EXPIRED:
            raise SealExpired(f"seal {record.esid} expired at {record.valid_end.isoformat()}")
        if status is not SealStatus.ACTIVE or record.eseal is None:
            raise SealNotActive(f"seal {record.esid} is {status}")
        signer = self._signer(signer_id, actor)
        cert_status = self._check_signer(record, signer.certificate, now, revocation)
        return record, signer, cert_status

    def _seal(self, esid: str) -> SealRecord:
        cache = self._seals
        if cache is None:
            return self._store.get(esid)
        record = cache.get(esid)
        if record is None:
            ticket = cache.ticket()
            record = self._store.get(esid)
            cache.put(esid, record, ticket)
        return record

    def _signer(self, signer_id: str, actor: Actor) -> StampSigner:
        state = self._signers.state(signer_id)  # read at every use: a disable holds at once
        key = (signer_id, actor, state.key_id, state.certificate)
        handle = self._handles.get(key) if state.status == SIGNER_ACTIVE else None
        if handle is None:
            ticket = self._handles.ticket()
            handle = self._signers.cms_signer(signer_id, actor)  # refuses a disabled signer
            self._handles.put(key, handle, ticket)
        return handle

    def _check_signer(
        self, record: SealRecord, cert: x509.Certificate, now: datetime, revocation: RevocationInput
    ) -> CertificateStatus:
        cert_der = cert.dump()  # a parsed certificate: its cached bytes
        listed = cert_der if record.cert_list_kind is CertListKind.CERTIFICATES else sm3(cert_der)
        if listed not in record.signers:
            raise SignerNotInSeal(f"the signer's certificate is not listed in seal {record.esid}")
        if not cert.not_valid_before <= now <= cert.not_valid_after:
            raise SignerCertificateExpired(
                f"the signer's certificate is valid {cert.not_valid_before.isoformat()} .. "
                f"{cert.not_valid_after.isoformat()}"
            )
        status = self._certificate_status.status(cert_der, now, revocation)
        if status.revoked:
            raise SignerCertificateRevoked(
                f"the signer's certificate is revoked ({status.reason or 'unspecified'}; "
                f"{status.source})"
            )
        if status.required:
            raise SignerRevocationUnknown(
                f"the signer's certificate is not from this service's CA and its revocation "
                f"could not be established in {revocation.mode} mode: {status.source}"
            )
        return status

    # --- helpers -------------------------------------------------------------------

    def _transition(self, operation: str, esid: str, actor: str, reason: str | None) -> SealRecord:
        if reason is not None and len(reason) > 1000:
            raise ValidationFailed("a reason is at most 1000 characters")
        return self._audited(
            actor,
            f"seal.{operation}",
            esid,
            lambda: self._change(self.get(esid), operation, actor, reason),
            _status_details,
        )

    def _change(
        self, record: SealRecord, operation: str, actor: str, reason: str | None = None
    ) -> SealRecord:
        now = self._clock.now()
        target = check_transition(operation, record.esid, record.effective_status(now))
        return self._store_change(record, [StatusChange(0, target, now, actor, reason)])

    def _store_change(
        self,
        record: SealRecord,
        changes: Sequence[StatusChange],
        fields: Mapping[str, Any] | None = None,
    ) -> SealRecord:
        changed = self._store.change(record, changes, fields)
        self._forget(record.esid)
        return changed

    def _forget(self, esid: str) -> None:
        """Drop what every worker keeps of the seal (here at once, whatever the broadcast
        does)."""
        for cache in (self._seals, self._registered):
            if cache is not None:
                cache.invalidate(esid)
        if self._coordination is not None:
            try:
                self._coordination.publish(SEAL_CHANNEL, esid)
            except TrustError:
                # The change is committed; other workers catch up within cache_seconds.
                log.warning("could not broadcast the change of seal %s", esid)

    def _record_expiry(self, record: SealRecord) -> SealRecord:
        def run() -> SealRecord:
            change = StatusChange(0, SealStatus.EXPIRED, record.valid_end, SYSTEM_ACTOR)
            return self._store_change(record, [change])

        return self._audited(SYSTEM_ACTOR, "seal.expire", record.esid, run, _status_details)

    def _new_record(self, request: ApplyRequest, actor: str) -> SealRecord:
        code = self._policy.type_codes.get(request.seal_type)
        if code is None:
            known = ", ".join(sorted(self._policy.type_codes))
            raise ValidationFailed(f"seal type {request.seal_type!r} is none of: {known}")
        esid = request.esid or uuid.uuid4().hex
        if not _ESID.fullmatch(esid):
            raise ValidationFailed("an esID is 1 to 64 characters of 0-9 A-Z a-z . _ -")
        for what, text in (("name", request.name), ("organization", request.organization)):
            if not 1 <= len(text.strip()) <= 200 or text != text.strip():
                raise ValidationFailed(f"the {what} is 1 to 200 characters, no outer spaces")
        picture_type = _check_picture(request.picture, request.picture_type)
        if not (1 <= request.width_mm <= MAX_MM and 1 <= request.height_mm <= MAX_MM):
            raise ValidationFailed(f"width and height are 1 to {MAX_MM} mm")
        now = self._clock.now()
        start, end = request.valid_start, request.valid_end
        if start.utcoffset() is None or end.utcoffset() is None:
            raise ValidationFailed("validity times must carry a time zone")
        if not start < end or end <= now:
            raise ValidationFailed("the validity must end after it starts and after now")
        kind, signers = _signer_list(request.signer_certificates, request.signer_certificate_sm3)
        return SealRecord(
            esid=esid,
            type_code=code,
            type_name=request.seal_type,
            name=request.name,
            organization=request.organization,
            picture_type=picture_type,
            picture=request.picture,
            width_mm=request.width_mm,
            height_mm=request.height_mm,
            # Whole seconds, as GeneralizedTime in the made seal will have them.
            valid_start=start.astimezone(UTC).replace(microsecond=0),
            valid_end=end.astimezone(UTC).replace(microsecond=0),
            cert_list_kind=kind,
            signers=signers,
            applicant=actor,
            status=SealStatus.APPLIED,
            row_version=1,
            created_at=now,
            updated_at=now,
        )

    def _audited(
        self,
        actor: str,
        action: str,
        target: str | None,
        run: Callable[[], _T],
        details: Callable[[_T], Mapping[str, Any]],
    ) -> _T:
        return audited(self._audit, actor, action, target, run, details)


def _whole_second_up(instant: datetime) -> datetime:
    """timeInfo has whole seconds. Rounding down could name an instant before a seal made
    or resumed a moment ago was active, so a good stamp would later verify as made while
    the seal was not active; rounding up never precedes the checks made now."""
    whole = instant.replace(microsecond=0)
    return whole if whole == instant else whole + timedelta(seconds=1)


def _status_details(record: SealRecord) -> Mapping[str, Any]:
    return {"status": record.status.value, "approvals": len(record.approvals)}


def _data_digest(data: bytes | None, data_sm3: bytes | None) -> bytes:
    if (data is None) == (data_sm3 is None):
        raise ValidationFailed("give the data or its SM3 digest, exactly one")
    if data is not None:
        return sm3(data)
    assert data_sm3 is not None
    if len(data_sm3) != DIGEST_SIZE:
        raise InvalidLength(f"an SM3 digest is {DIGEST_SIZE} bytes, got {len(data_sm3)}")
    return data_sm3


def _property_info(text: str) -> str:
    if not 1 <= len(text) <= 1024 or not all(" " <= c <= "~" for c in text):
        raise ValidationFailed("propertyInfo is 1 to 1024 printable ASCII characters")
    return text


def _check_picture(picture: bytes, declared: str) -> str:
    kind = declared.upper()
    if len(picture) > MAX_PICTURE_BYTES:
        raise SealImageInvalid(f"the image is larger than {MAX_PICTURE_BYTES} bytes")
    if kind == "PNG" and picture.startswith(_PNG_MAGIC):
        return kind
    if kind == "SVG" and _SVG_ROOT.match(picture):
        return kind
    raise SealImageInvalid(f"the image is not a {kind} picture (PNG and SVG are accepted)")


def _signer_list(
    certificates: Sequence[bytes], digests: Sequence[bytes]
) -> tuple[CertListKind, tuple[bytes, ...]]:
    if bool(certificates) == bool(digests):
        raise ValidationFailed("list signer certificates or their SM3 digests, one of the two")
    entries = tuple(certificates or digests)
    if len(entries) > MAX_SIGNERS:
        raise ValidationFailed(f"at most {MAX_SIGNERS} signers")
    if len(set(entries)) != len(entries):
        raise ValidationFailed("a signer is listed twice")
    if digests:
        if any(len(d) != DIGEST_SIZE for d in digests):
            raise InvalidLength(f"a certificate digest is SM3, {DIGEST_SIZE} bytes")
        return CertListKind.DIGESTS, entries
    for der in certificates:
        try:
            cert = x509.Certificate.load(der, strict=True)
            cert.native  # noqa: B018  (parses it all)
            key = load_public_key(cert.public_key.dump())
        # asn1crypto reports a certificate that does not parse with assorted exceptions.
        except Exception:
            raise ValidationFailed("a signer certificate is not an X.509 certificate") from None
        if not isinstance(key, SM2PublicKey):
            raise UnsupportedAlgorithm("signer certificates must certify SM2 keys (GB/T 38540)")
    return CertListKind.CERTIFICATES, entries
