"""Recording every attempt at an audited operation, refusals included.

A domain operation that changes state (issue, revoke, make a seal, bind a signer) is
recorded when it succeeds and when it is refused, with the refusal's stable code, so the
log shows every attempt and not only what succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from trust.auth.service import AuditSink
from trust.errors import TrustError

_T = TypeVar("_T")


def record_refusal(
    audit: AuditSink,
    actor: str,
    action: str,
    target: str | None,
    run: Callable[[], _T],
    details: Mapping[str, Any] | None = None,
) -> _T:
    """``run()``; a ``TrustError`` is recorded (outcome failure, ``details`` as they stand
    then, and its code) and re-raised. The caller records the success itself."""
    try:
        return run()
    except TrustError as exc:
        failure = {**(details or {}), "code": exc.code}
        audit.append(actor, action, target=target, outcome="failure", details=failure)
        raise


def audited(
    audit: AuditSink,
    actor: str,
    action: str,
    target: str | None,
    run: Callable[[], _T],
    details: Callable[[_T], Mapping[str, Any]],
) -> _T:
    """``run()``, recorded with ``details(result)`` on success and as a refusal otherwise."""
    result = record_refusal(audit, actor, action, target, run)
    audit.append(actor, action, target=target, details=details(result))
    return result
