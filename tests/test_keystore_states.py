"""The key-state machine: every (from, to) pair of the six SP 800-57 states, through the
service (so the database, the audit log and the specific error codes are exercised)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from keystore import KeyState, KeyStore
from keystore.states import ALLOWED
from tests.test_keystore import ADMIN, Env, open_env, request
from trust.errors import InvalidStateTransition

S = KeyState
PAIRS = [(a, b) for a in S for b in S]
# The code each refused move must carry.
REFUSED_CODE = {
    (a, b): (
        "key_state_unchanged"
        if a is b
        else "key_already_destroyed"
        if a is S.DESTROYED
        else "key_already_compromised"
        if a is S.COMPROMISED
        else "key_activation_irreversible"
        if b is S.PRE_ACTIVATION
        else "key_already_deactivated"
        if a is S.DEACTIVATED
        else "key_never_activated"
        if a is S.PRE_ACTIVATION
        else "key_destruction_needs_deactivation"
    )
    for a, b in PAIRS
    if (a, b) not in ALLOWED
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = open_env(f"sqlite:///{tmp_path_factory.mktemp('states') / 'k.db'}")
    yield e
    e.store.close()
    e.db.dispose()


def _key_in(e: Env, state: KeyState) -> str:
    """A fresh key brought to ``state`` along allowed moves."""
    if state is S.PRE_ACTIVATION:
        return e.store.generate(request(activation_at=e.clock.now() + timedelta(days=1)), ADMIN).id
    key_id = e.store.generate(request(), ADMIN).id
    path = {
        S.ACTIVE: [],
        S.SUSPENDED: [S.SUSPENDED],
        S.DEACTIVATED: [S.DEACTIVATED],
        S.COMPROMISED: [S.COMPROMISED],
        S.DESTROYED: [S.DEACTIVATED, S.DESTROYED],
    }[state]
    for step in path:
        _move(e.store, key_id, step, e)
    assert e.store.get(key_id, ADMIN).state is state
    return key_id


def _move(store: KeyStore, key_id: str, target: KeyState, e: Env) -> None:
    if target is S.DESTROYED:
        store.schedule_destruction(key_id, ADMIN, wait=timedelta(0))
        assert key_id in store.destroy_due()
    elif target is S.ACTIVE and store.get(key_id, ADMIN).state is S.SUSPENDED:
        store.resume(key_id, ADMIN)
    else:
        store.transition(key_id, target, ADMIN)


def test_matrix_is_complete() -> None:
    assert len(ALLOWED) + len(REFUSED_CODE) == 36
    assert len(ALLOWED) == 12


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED), ids=lambda s: str(s))
def test_allowed_transition(env: Env, current: KeyState, target: KeyState) -> None:
    key_id = _key_in(env, current)
    _move(env.store, key_id, target, env)
    info = env.store.get(key_id, ADMIN)
    assert info.state is target
    if target is S.COMPROMISED:
        assert info.compromised_at is not None


@pytest.mark.parametrize(("current", "target"), sorted(REFUSED_CODE), ids=lambda s: str(s))
def test_refused_transition(env: Env, current: KeyState, target: KeyState) -> None:
    key_id = _key_in(env, current)
    with pytest.raises(InvalidStateTransition) as caught:
        env.store.transition(key_id, target, ADMIN)
    assert caught.value.code == REFUSED_CODE[(current, target)]
    assert env.store.get(key_id, ADMIN).state is current
