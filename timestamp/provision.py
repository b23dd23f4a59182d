"""The service's TSA out of the box: the default units ``trustctl init`` creates, and the
``TimestampAuthority`` an app builds over the units in the store."""

from __future__ import annotations

from datetime import timedelta

from ca.service import CertificateAuthority
from keystore.service import KeyStore
from timestamp.registry import SqlUnitStore, StoredUnits, UnitPlan, UnitRecord, UnitRegistry
from timestamp.service import TimestampAuthority
from timestamp.store import SqlTokenLog
from timestamp.units import ClockHealth
from trust.auth import AuditSink
from trust.clock import Clock
from trust.db import Database
from trust.errors import CaUnusable
from trust.keys import KeyAlgorithm
from trust.settings import Settings

# The default policies (settings tsa_sm2_policy_oid, tsa_ecdsa_policy_oid) sit under the
# ITU-T example arc: placeholders until the operator sets the OIDs of its TSA policy.
PLACEHOLDER_ARC = "2.999."


def default_plans(ca: CertificateAuthority, settings: Settings) -> list[UnitPlan]:
    """Unit ``sm2`` under the default SM2 issuing CA, ``ecdsa`` under the ECDSA one."""
    by_name = {info.name: info for info in ca.list_cas()}
    accuracy = timedelta(milliseconds=settings.tsa_accuracy_ms)
    plans = []
    for unit, ca_name, algorithm, policy in (
        (
            "sm2",
            settings.ca_default_sm2_issuing_name,
            KeyAlgorithm.SM2,
            settings.tsa_sm2_policy_oid,
        ),
        (
            "ecdsa",
            settings.ca_default_ecdsa_issuing_name,
            KeyAlgorithm.ECDSA_P256,
            settings.tsa_ecdsa_policy_oid,
        ),
    ):
        issuer = by_name.get(ca_name)
        if issuer is None:
            raise CaUnusable(f"no CA named {ca_name!r}: create the default CA hierarchy first")
        plans.append(
            UnitPlan(unit, algorithm, issuer.id, policy, accuracy, settings.ca_default_organization)
        )
    return plans


def ensure_default_units(
    registry: UnitRegistry, ca: CertificateAuthority, settings: Settings
) -> list[tuple[UnitRecord, bool]]:
    """Units ``sm2`` and ``ecdsa`` (idempotent); each with whether it was made now."""
    return [registry.ensure(plan) for plan in default_plans(ca, settings)]


def build_unit_registry(
    db: Database, keystore: KeyStore, ca: CertificateAuthority, clock: Clock, audit: AuditSink
) -> UnitRegistry:
    return UnitRegistry(SqlUnitStore(db), keystore, ca, clock, audit)


def build_timestamp_authority(
    settings: Settings,
    db: Database,
    registry: UnitRegistry,
    clock: Clock,
    clock_health: ClockHealth,
) -> TimestampAuthority:
    """The TSA over the store's units (re-read every ``tsa_unit_refresh_seconds``) and the
    token log in ``db``."""
    return TimestampAuthority(
        StoredUnits(registry, settings.tsa_unit_refresh_seconds),
        SqlTokenLog(db),
        clock,
        clock_health,
        default_unit=settings.tsa_default_unit,
    )
