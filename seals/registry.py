"""The seal registry's model (GB/T 33481): seal records, statuses, allowed transitions
and the status of a seal at an instant, computed from its status history.

Statuses: applied -> approved -> made -> active <-> suspended -> revoked, and expired.
``made`` becomes ``active`` when the validity starts (at once when it has started);
``expired`` holds from ``valid_end`` on for a seal that was not revoked before, whether
or not the expiry sweep has recorded it yet, so the answer never depends on when the
sweep ran. Revocation is possible from every status before it (an application can be
withdrawn) and is final, as is expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from trust.errors import SealStateConflict


class SealStatus(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    MADE = "made"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


S = SealStatus
# What each operation may start from, and where it leads.
TRANSITIONS: dict[str, tuple[frozenset[SealStatus], SealStatus]] = {
    "approve": (frozenset({S.APPLIED}), S.APPROVED),
    "make": (frozenset({S.APPROVED}), S.MADE),
    "activate": (frozenset({S.MADE}), S.ACTIVE),
    "suspend": (frozenset({S.ACTIVE}), S.SUSPENDED),
    "resume": (frozenset({S.SUSPENDED}), S.ACTIVE),
    "revoke": (frozenset({S.APPLIED, S.APPROVED, S.MADE, S.ACTIVE, S.SUSPENDED}), S.REVOKED),
    "expire": (frozenset({S.APPLIED, S.APPROVED, S.MADE, S.ACTIVE, S.SUSPENDED}), S.EXPIRED),
}
del S
FINAL = frozenset({SealStatus.REVOKED, SealStatus.EXPIRED})


def check_transition(operation: str, esid: str, current: SealStatus) -> SealStatus:
    """The status ``operation`` leads to from ``current``; refused with
    ``seal_state_conflict`` (409) when not allowed."""
    sources, target = TRANSITIONS[operation]
    if current not in sources:
        raise SealStateConflict(
            f"seal {esid} is {current}; {operation} needs it "
            + " or ".join(sorted(s.value for s in sources)),
            status_now=current.value,
        )
    return target


class CertListKind(StrEnum):
    CERTIFICATES = "certificates"  # certListType 1
    DIGESTS = "digests"  # certListType 2, SM3 of each signer certificate


@dataclass(frozen=True)
class StatusChange:
    seq: int
    status: SealStatus
    at: datetime
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class SealRecord:
    esid: str
    type_code: int
    type_name: str
    name: str
    organization: str
    picture_type: str  # PNG | SVG
    picture: bytes = field(repr=False)
    width_mm: int
    height_mm: int
    valid_start: datetime
    valid_end: datetime
    cert_list_kind: CertListKind
    # DER signer certificates, or their SM3 digests, as the seal lists them.
    signers: tuple[bytes, ...] = field(repr=False)
    applicant: str
    status: SealStatus  # as last recorded; see effective_status
    row_version: int
    created_at: datetime
    updated_at: datetime
    approvals: tuple[str, ...] = ()
    eseal: bytes | None = field(default=None, repr=False)
    maker_serial: str | None = None

    def effective_status(self, at: datetime) -> SealStatus:
        return derived_status(self.status, at, self.valid_start, self.valid_end)


@dataclass(frozen=True)
class RegisteredSeal:
    """What verification reads: the seal made under an esID and its status history."""

    esid: str
    eseal: bytes | None = field(repr=False)
    valid_start: datetime
    valid_end: datetime
    history: tuple[StatusChange, ...]

    def status_at(self, at: datetime) -> SealStatus | None:
        return status_at(self.history, at, self.valid_start, self.valid_end)


def derived_status(
    recorded: SealStatus, at: datetime, valid_start: datetime, valid_end: datetime
) -> SealStatus:
    """The status at ``at`` given the last status recorded before it: validity turns a
    made seal active and an unrevoked one expired without waiting for a recorded change."""
    if recorded in FINAL:
        return recorded
    if at >= valid_end:
        return SealStatus.EXPIRED
    if recorded is SealStatus.MADE and at >= valid_start:
        return SealStatus.ACTIVE
    return recorded


def status_at(
    history: Sequence[StatusChange], at: datetime, valid_start: datetime, valid_end: datetime
) -> SealStatus | None:
    """The seal's status at ``at`` from its history (oldest first); None before it was
    applied for."""
    recorded: SealStatus | None = None
    for change in history:
        if change.at > at:
            break
        recorded = change.status
    if recorded is None:
        return None
    return derived_status(recorded, at, valid_start, valid_end)
