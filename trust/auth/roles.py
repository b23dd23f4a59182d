"""Roles, grants and the authenticated principal.

A token carries grants ``(role, resource_type?, resource_ids?)``. A grant without
resource ids holds the role everywhere; a narrowed grant holds it only on routes
that name a resource of its type with one of its ids. On a route that names no
resource a narrowed grant does not count: narrowing is meant to confine, so it
never widens into operations on unnamed (e.g. new) resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trust.errors import BadRequest


class Role(StrEnum):
    admin = "admin"
    key_admin = "key_admin"
    ca_operator = "ca_operator"
    seal_officer = "seal_officer"
    signer = "signer"
    verifier = "verifier"
    auditor = "auditor"


# The resource type a narrowed grant of a role refers to when none is given.
DEFAULT_RESOURCE_TYPE: dict[Role, str] = {
    Role.key_admin: "key",
    Role.signer: "key",
    Role.seal_officer: "seal",
    Role.ca_operator: "ca",
}

_MAX_RESOURCE_IDS = 100
_MAX_ID_LEN = 128


@dataclass(frozen=True)
class Grant:
    role: Role
    resource_type: str | None = None
    resource_ids: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.resource_ids is None:
            if self.resource_type is not None:
                raise BadRequest("a grant with a resource_type needs resource_ids")
            return
        if not self.resource_type:
            raise BadRequest("a grant narrowed to resource_ids needs a resource_type")
        if not self.resource_ids or len(self.resource_ids) > _MAX_RESOURCE_IDS:
            raise BadRequest(f"resource_ids must hold 1 to {_MAX_RESOURCE_IDS} ids")
        if any(not r or len(r) > _MAX_ID_LEN for r in self.resource_ids):
            raise BadRequest(f"resource ids must be 1 to {_MAX_ID_LEN} characters")

    @classmethod
    def narrowed(
        cls, role: Role, resource_ids: list[str], resource_type: str | None = None
    ) -> Grant:
        """A grant of ``role`` on ``resource_ids``, typed by the role's default when not given."""
        rtype = resource_type or DEFAULT_RESOURCE_TYPE.get(role)
        if rtype is None:
            raise BadRequest(f"role {role} has no default resource type; give one")
        return cls(role, rtype, frozenset(resource_ids))

    def allows(self, role: Role, resource_type: str | None, resource_id: str | None) -> bool:
        if role != self.role:
            return False
        if self.resource_ids is None:
            return True
        return resource_type == self.resource_type and resource_id in self.resource_ids

    def to_json(self) -> dict[str, object]:
        return {
            "role": self.role.value,
            "resource_type": self.resource_type,
            "resource_ids": sorted(self.resource_ids) if self.resource_ids is not None else None,
        }


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an API token that passed authentication."""

    token_id: str
    label: str
    grants: tuple[Grant, ...]

    @property
    def actor(self) -> str:
        """The name written to the audit log and the access log."""
        return f"token:{self.token_id}"

    def allows(
        self,
        roles: frozenset[Role],
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> bool:
        return any(g.allows(r, resource_type, resource_id) for g in self.grants for r in roles)
