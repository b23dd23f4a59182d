"""Authentication and roles: API tokens, grants and the principal a request acts as.

No HTTP here: ``api/security.py`` turns a bearer header into a call to
:meth:`AuthService.authenticate` and checks each route's rule against the
:class:`Principal`.
"""

from trust.auth.roles import DEFAULT_RESOURCE_TYPE, Grant, Principal, Role
from trust.auth.service import AuditSink, AuthService, IssuedToken, TokenInfo

__all__ = [
    "DEFAULT_RESOURCE_TYPE",
    "AuditSink",
    "AuthService",
    "Grant",
    "IssuedToken",
    "Principal",
    "Role",
    "TokenInfo",
]
