"""Token-resident ECDSA P-256 key pairs, against a private SoftHSM2 token (required in CI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from keystore.hsm_keys import ECDSA_P256, HsmKeyPair, HsmKeys
from keystore.kek.pkcs11 import token_session
from trust.errors import Conflict, KeyNotFound

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.softhsm import SoftHsm

pytest_plugins = ["tests.softhsm"]
pytestmark = pytest.mark.softhsm


@pytest.fixture
def keys(softhsm: SoftHsm) -> HsmKeys:
    return HsmKeys(softhsm.config())


@pytest.fixture
def pair(keys: HsmKeys, softhsm: SoftHsm) -> HsmKeyPair:
    return keys.generate_ecdsa_p256(softhsm.unique_label("ec"))


def _public(pair: HsmKeyPair) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(pair.public_key_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def test_generate_exports_p256_spki(pair: HsmKeyPair) -> None:
    public = _public(pair)
    assert isinstance(public.curve, ec.SECP256R1)
    assert pair.algorithm == ECDSA_P256
    assert len(pair.key_id) == 16


def test_sign_verifies_with_cryptography(keys: HsmKeys, pair: HsmKeyPair) -> None:
    signature = keys.sign(pair.key_id, b"document")
    _public(pair).verify(signature, b"document", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        _public(pair).verify(signature, b"documenT", ec.ECDSA(hashes.SHA256()))


def test_private_key_never_leaves_the_token(pair: HsmKeyPair, softhsm: SoftHsm) -> None:
    with token_session(softhsm.config(), "test") as session:
        (private,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: pair.key_id}
        )
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.PRIVATE] is True
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.DERIVE] is False
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]


def test_find_by_label_and_id(keys: HsmKeys, pair: HsmKeyPair) -> None:
    assert keys.find(label=pair.label) == pair
    assert keys.find(key_id=pair.key_id) == pair
    assert keys.find(label=pair.label, key_id=pair.key_id) == pair
    with pytest.raises(KeyNotFound):
        keys.find(label=pair.label, key_id=b"\x00" * 16)
    with pytest.raises(KeyNotFound, match="label 'absent'"):
        keys.find(label="absent")


def test_another_instance_finds_and_signs(softhsm: SoftHsm, pair: HsmKeyPair) -> None:
    found = HsmKeys(softhsm.config()).find(label=pair.label)
    signature = HsmKeys(softhsm.config()).sign(found.key_id, b"x")
    _public(pair).verify(signature, b"x", ec.ECDSA(hashes.SHA256()))


def test_labels_are_unique(keys: HsmKeys, pair: HsmKeyPair) -> None:
    with pytest.raises(Conflict):
        keys.generate_ecdsa_p256(pair.label)


def test_unknown_key_cannot_sign(keys: HsmKeys) -> None:
    with pytest.raises(KeyNotFound):
        keys.sign(b"\x00" * 16, b"x")


def test_public_half_alone_is_not_a_key_pair(
    keys: HsmKeys, pair: HsmKeyPair, softhsm: SoftHsm
) -> None:
    with token_session(softhsm.config(), "test") as session:
        (private,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: pair.key_id}
        )
        private.destroy()
    with pytest.raises(KeyNotFound):
        keys.find(key_id=pair.key_id)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_any_message_signs_and_verifies(keys: HsmKeys, pair: HsmKeyPair, data: bytes) -> None:
    _public(pair).verify(keys.sign(pair.key_id, data), data, ec.ECDSA(hashes.SHA256()))
