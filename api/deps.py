"""The service objects the API uses, built once per app and handed to routes.

``create_app(settings, database=..., clock=..., ...)`` takes any of them ready
made (tests pass a FakeClock, a shared Database, a stub audit log); the rest are
built from the settings. Routes get them through the ``*Dep`` annotations
below, which also work with ``app.dependency_overrides``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from ca.keystore_source import build_certificate_authority
from ca.service import CertificateAuthority
from keystore import KeyStore, build_keystore
from trust.audit import AuditLog
from trust.auth import AuditSink, AuthService
from trust.clock import Clock, SystemClock
from trust.coordination import Coordination, build_coordination
from trust.db import Database
from trust.settings import Settings


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
                    self.settings, self.database, self.keystore(), self.clock, self.audit
                )
            return self._ca

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
        # No checkpoint signer is wired into API processes yet: they append to the
        # hash chain, and no signed checkpoints are written from here.
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


def get_ca(request: Request) -> CertificateAuthority:
    return get_services(request).ca()


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CoordinationDep = Annotated[Coordination, Depends(get_coordination)]
AuditDep = Annotated[AuditSink, Depends(get_audit)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
KeyStoreDep = Annotated[KeyStore, Depends(get_keystore)]
CaDep = Annotated[CertificateAuthority, Depends(get_ca)]
