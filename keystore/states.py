"""The key-state machine (NIST SP 800-57 part 1 rev. 5, section 5.3).

A pre-activation key may become active, or be destroyed or compromised before
use; an active key may be suspended (and resumed), deactivated or compromised;
a deactivated key may still process (verify, decrypt) and may be destroyed or
reported compromised; a compromised key may only be destroyed; destroyed is final.
Everything else is refused with an error naming the reason.
"""

from __future__ import annotations

from keystore.model import KeyState
from trust.errors import (
    InvalidStateTransition,
    KeyActivationIrreversible,
    KeyAlreadyCompromised,
    KeyAlreadyDeactivated,
    KeyAlreadyDestroyed,
    KeyDestructionNeedsDeactivation,
    KeyNeverActivated,
    KeyStateUnchanged,
)

S = KeyState

ALLOWED: frozenset[tuple[KeyState, KeyState]] = frozenset(
    {
        (S.PRE_ACTIVATION, S.ACTIVE),
        (S.PRE_ACTIVATION, S.COMPROMISED),
        (S.PRE_ACTIVATION, S.DESTROYED),
        (S.ACTIVE, S.SUSPENDED),
        (S.ACTIVE, S.DEACTIVATED),
        (S.ACTIVE, S.COMPROMISED),
        (S.SUSPENDED, S.ACTIVE),
        (S.SUSPENDED, S.DEACTIVATED),
        (S.SUSPENDED, S.COMPROMISED),
        (S.DEACTIVATED, S.COMPROMISED),
        (S.DEACTIVATED, S.DESTROYED),
        (S.COMPROMISED, S.DESTROYED),
    }
)


def refusal(current: KeyState, target: KeyState) -> type[InvalidStateTransition] | None:
    """The error class refusing ``current -> target``; None when the move is allowed."""
    if (current, target) in ALLOWED:
        return None
    if current is target:
        return KeyStateUnchanged
    if current is S.DESTROYED:
        return KeyAlreadyDestroyed
    if current is S.COMPROMISED:
        return KeyAlreadyCompromised
    if target is S.PRE_ACTIVATION:
        return KeyActivationIrreversible
    if current is S.DEACTIVATED:
        return KeyAlreadyDeactivated
    if current is S.PRE_ACTIVATION:
        return KeyNeverActivated
    # Only active/suspended -> destroyed is left.
    return KeyDestructionNeedsDeactivation


def check_transition(key_id: str, current: KeyState, target: KeyState) -> None:
    error = refusal(current, target)
    if error is not None:
        raise error(f"key {key_id}: {current} -> {target} is not allowed")
