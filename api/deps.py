"""The service objects the API uses, built once per app and handed to routes.

``create_app(settings, database=..., clock=..., ...)`` takes any of them ready
made (tests pass a FakeClock, a shared Database, a stub audit log); the rest are
built from the settings. Routes get them through the ``*Dep`` annotations
below, which also work with ``app.dependency_overrides``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from asn1crypto import x509
from fastapi import Depends
from starlette.requests import Request

from ca.keystore_source import build_certificate_authority
from ca.service import CertificateAuthority
from ca.signer_store import SqlSignerStore
from ca.signers import SignerRegistry, Timestamper
from keystore import KeyStore, build_keystore, sign_checkpoints
from seals.documents.bounded import WorkerLimits
from seals.documents.ofd_package import PackageLimits
from seals.documents.service import DocumentService
from seals.service import SealService
from seals.wiring import SealVerifier, build_seal_service
from timestamp import ClockHealth, FlagFileClockHealth, TimestampAuthority
from timestamp.provision import build_timestamp_authority, build_unit_registry
from timestamp.registry import UnitRegistry, guard_unit_keys
from trust.audit import AuditLog
from trust.auth import AuditSink, AuthService
from trust.clock import Clock, SystemClock
from trust.coordination import Coordination, build_coordination
from trust.db import Database
from trust.errors import (
    ConfigurationError,
    NotFound,
    TimestampUnavailable,
    TrustError,
    TsaUnitUnavailable,
)
from trust.settings import Settings
from trust.validation.certs import load_certificates

log = logging.getLogger("trust.api")


@dataclass
class Services:
    settings: Settings
    database: Database
    clock: Clock
    coordination: Coordination
    audit: AuditSink
    auth: AuthService
    # Closers of what build_services made itself; what was passed in stays open.
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _keystore: KeyStore | None = field(default=None, repr=False)
    _keystore_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ca: CertificateAuthority | None = field(default=None, repr=False)
    _ca_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tsa: TimestampAuthority | None = field(default=None, repr=False)
    _tsa_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _signers: SignerRegistry | None = field(default=None, repr=False)
    _seal_verifier: SealVerifier | None = field(default=None, repr=False)
    _seal_verifier_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seals: SealService | None = field(default=None, repr=False)
    _seals_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _documents: DocumentService | None = field(default=None, repr=False)

    def keystore(self) -> KeyStore:
        """The key store, built on first use (the lifespan builds it at start-up, so a
        missing master key stops the server there; apps that never start it, such as
        tests without a master key, still serve every other route)."""
        built = self._keystore
        if built is not None:  # the per-request path takes no lock
            return built
        with self._keystore_lock:
            if self._keystore is None:
                self._keystore = build_keystore(
                    self.settings,
                    self.database,
                    clock=self.clock,
                    audit=self.audit,
                    coordination=self.coordination,
                )
                self._closers.append(self._keystore.close)
                # A TSA unit's key is rotated with its certificate (tsa_units().rotate).
                guard_unit_keys(self._keystore, self.database)
                if isinstance(self.audit, AuditLog):
                    # The audit key made by `trustctl init` signs this process's checkpoints.
                    sign_checkpoints(self._keystore, self.audit)
            return self._keystore

    def ca(self) -> CertificateAuthority:
        """The certificate authority over the key store, built on first use; one per app
        so its OCSP response cache and responder lock are shared by all requests."""
        built = self._ca
        if built is not None:
            return built
        with self._ca_lock:
            if self._ca is None:
                self._ca = build_certificate_authority(
                    self.settings,
                    self.database,
                    self.keystore(),
                    self.clock,
                    self.audit,
                    self.coordination,
                )
                self._closers.append(self._ca.close)  # its status subscription
            return self._ca

    def tsa_units(self) -> UnitRegistry:
        """Creates and rotates TSA units (keys in the key store, certificates from the CA)."""
        return build_unit_registry(
            self.database, self.keystore(), self.ca(), self.clock, self.audit
        )

    def tsa_clock_health(self) -> ClockHealth:
        """The operator's clock-health hook (a flag file, see settings); /readyz reports it."""
        return FlagFileClockHealth(self.settings.effective_tsa_clock_flag_file)

    def tsa(self) -> TimestampAuthority:
        """The time-stamp authority over the store's units, one per app. Other domains
        embed its tokens through ``tsa().issue(hash_algorithm, digest)``."""
        built = self._tsa
        if built is not None:
            return built
        with self._tsa_lock:
            if self._tsa is None:
                self._tsa = build_timestamp_authority(
                    self.settings,
                    self.database,
                    self.tsa_units(),
                    self.clock,
                    self.tsa_clock_health(),
                )
            return self._tsa

    def signers(self) -> SignerRegistry:
        """The signer registry over the key store and the CA (stateless apart from them)."""
        if self._signers is None:
            self._signers = SignerRegistry(
                SqlSignerStore(self.database), self.keystore(), self.ca(), self.clock, self.audit
            )
        return self._signers

    def signature_timestamper(self) -> Timestamper:
        """Signature timestamp tokens for the signing service, from the service's TSA
        (looked up at each use, so a TSA configured later is seen)."""
        return _ServiceTimestamper(self.tsa)

    def seals(self) -> SealService:
        """The seal service (registry, lifecycle, stamping), built on first use over the
        key store, the CA, the signer registry and the TSA."""
        built = self._seals
        if built is not None:
            return built
        with self._seals_lock:
            if self._seals is None:
                self._seals = build_seal_service(
                    self.settings,
                    self.database,
                    self.keystore(),
                    self.ca(),
                    self.clock,
                    self.audit,
                    signers=self.signers(),
                    timestamper=self.signature_timestamper(),
                    coordination=self.coordination,
                )
            return self._seals

    def trust_anchors(self) -> list[x509.Certificate]:
        """The service's root CAs and the configured anchor files (read at each call, so
        a CA created meanwhile is trusted at once)."""
        anchors: list[x509.Certificate] = []
        try:
            for info in self.ca().list_cas():
                if info.parent_id is None:
                    anchors.extend(load_certificates(info.certificate_pem.encode()))
        except TrustError as exc:
            # No key store (no master key) means no CA: external roots still work.
            log.warning("service CAs unavailable as trust anchors: %s", exc.detail)
        for path in self.settings.trust_anchor_files:
            try:
                anchors.extend(load_certificates(path.read_bytes()))
            except OSError as exc:
                raise ConfigurationError(f"cannot read trust anchor file {path}") from exc
        return anchors

    def documents(self) -> DocumentService:
        """OFD (and PDF) stamping and verification over the seal service."""
        if self._documents is None:
            self._documents = DocumentService(
                self.seals,
                self.signers,
                self.clock,
                self.audit,
                seal_verifier=lambda signature, original: self.seal_verifier().verify_signature(
                    signature, original=original
                ),
                anchors=self.trust_anchors,
                timestamper=self.signature_timestamper(),
                limits=PackageLimits.from_settings(self.settings),
                pdf_limits=WorkerLimits.from_settings(self.settings),
                pdf_workers=self.settings.document_pdf_workers,
                crls=self.ca,
            )
        return self._documents

    def seal_verifier(self) -> SealVerifier:
        """Seal verification with the service's anchors and registry; one per app so its
        certificate path cache is shared by all requests."""
        built = self._seal_verifier
        if built is not None:
            return built
        with self._seal_verifier_lock:
            if self._seal_verifier is None:
                self._seal_verifier = SealVerifier(
                    self.settings,
                    self.ca(),
                    self.clock,
                    self.seals(),
                    coordination=self.coordination,
                )
            return self._seal_verifier

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def build_services(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    coordination: Coordination | None = None,
    audit: AuditSink | None = None,
    auth: AuthService | None = None,
    keystore: KeyStore | None = None,
) -> Services:
    closers: list[Callable[[], None]] = []
    clock = clock or SystemClock()
    if database is None:
        database = Database(settings.effective_database_url)
        closers.append(database.dispose)
    if coordination is None:
        coordination = build_coordination(settings, clock)
        closers.append(coordination.close)
    if audit is None:
        # Checkpoints are signed once the key store exists (``Services.keystore``).
        audit = AuditLog(database, clock, checkpoint_every=settings.audit_checkpoint_every)
    auth = auth or AuthService(database, clock, audit)
    return Services(settings, database, clock, coordination, audit, auth, closers, keystore)


def get_services(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


def get_settings(request: Request) -> Settings:
    return get_services(request).settings


def get_database(request: Request) -> Database:
    return get_services(request).database


def get_clock(request: Request) -> Clock:
    return get_services(request).clock


def get_coordination(request: Request) -> Coordination:
    return get_services(request).coordination


def get_audit(request: Request) -> AuditSink:
    return get_services(request).audit


def get_auth(request: Request) -> AuthService:
    return get_services(request).auth


async def get_keystore(request: Request) -> KeyStore:
    # async: FastAPI runs a plain-def dependency on the thread pool, one more thread hop
    # on the signing path; the store is built already (lifespan) so this does not block.
    return get_services(request).keystore()


async def get_ca(request: Request) -> CertificateAuthority:
    # async, as get_keystore: building it reads nothing, and a plain def would cost a
    # thread-pool hop on every OCSP request.
    return get_services(request).ca()


async def get_tsa(request: Request) -> TimestampAuthority:
    # async, as get_keystore: building it reads nothing (units load on first issue).
    return get_services(request).tsa()


async def get_signers(request: Request) -> SignerRegistry:
    return get_services(request).signers()


def get_documents(request: Request) -> DocumentService:
    return get_services(request).documents()


class _ServiceTimestamper:
    """``ca.signers.Timestamper`` over the service's TSA (its default unit)."""

    def __init__(self, tsa: Callable[[], TimestampAuthority]) -> None:
        self._tsa = tsa

    def check(self) -> None:
        tsa = self._tsa()
        try:
            tsa.unit()
        except NotFound as exc:
            raise TsaUnitUnavailable(f"cannot timestamp the signature: {exc.detail}") from None
        if not tsa.clock_synchronised():
            raise TimestampUnavailable(
                "cannot timestamp the signature: the TSA clock is unsynchronised"
            )

    def __call__(self, hash_algorithm: str, digest: bytes, /) -> bytes:
        return self._tsa().issue(hash_algorithm, digest).token


async def get_signature_timestamper(request: Request) -> Timestamper:
    return get_services(request).signature_timestamper()


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CoordinationDep = Annotated[Coordination, Depends(get_coordination)]
AuditDep = Annotated[AuditSink, Depends(get_audit)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
KeyStoreDep = Annotated[KeyStore, Depends(get_keystore)]
CaDep = Annotated[CertificateAuthority, Depends(get_ca)]
TsaDep = Annotated[TimestampAuthority, Depends(get_tsa)]
SignersDep = Annotated[SignerRegistry, Depends(get_signers)]
DocumentsDep = Annotated[DocumentService, Depends(get_documents)]
TimestamperDep = Annotated[Timestamper, Depends(get_signature_timestamper)]


async def get_seals(request: Request) -> SealService:
    return get_services(request).seals()


async def get_seal_verifier(request: Request) -> SealVerifier:
    return get_services(request).seal_verifier()


SealsDep = Annotated[SealService, Depends(get_seals)]
SealVerifierDep = Annotated[SealVerifier, Depends(get_seal_verifier)]
