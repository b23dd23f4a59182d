"""Key pairs that live in a PKCS#11 token: generated there, used there, never exported.

Only what the token supports natively: ECDSA on P-256 (SoftHSM2 has no SM2).
The private half is ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``; the public half
is exported as SubjectPublicKeyInfo DER. Signing hashes with SHA-256 outside
the token and signs the digest inside with ``CKM_ECDSA``: the token sees 32
bytes instead of the whole document, and the mechanism is the one every token
has (SoftHSM2 lacks ``CKM_ECDSA_SHA256``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from keystore.kek.pkcs11 import Pkcs11Config, token_session
from trust.errors import Conflict, InvalidLength, KeyNotFound, UnsupportedAlgorithm

ECDSA_P256 = "ecdsa-p256"
_P256_PARAMS = encode_named_curve_parameters("secp256r1")
_CKA_ID_SIZE = 16


@dataclass(frozen=True)
class HsmKeyPair:
    label: str
    key_id: bytes  # CKA_ID, shared by the private and the public object
    algorithm: str
    public_key_der: bytes  # SubjectPublicKeyInfo


class HsmKeys:
    """Token-resident key pairs of one PKCS#11 token."""

    def __init__(self, config: Pkcs11Config) -> None:
        self._config = config

    def generate_ecdsa_p256(self, label: str) -> HsmKeyPair:
        """A new P-256 key pair in the token; labels are unique (``Conflict`` otherwise)."""
        if not label:
            raise InvalidLength("an HSM key label must not be empty")
        with token_session(self._config, "generate an HSM key pair") as session:
            if _objects(session, ObjectClass.PRIVATE_KEY, label=label):
                raise Conflict(f"an HSM key labelled {label!r} already exists")
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: _P256_PARAMS}, local=True
            )
            public, _private = params.generate_keypair(
                id=os.urandom(_CKA_ID_SIZE),
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
            return _describe(public)

    def find(self, *, label: str | None = None, key_id: bytes | None = None) -> HsmKeyPair:
        """The key pair with this label and/or CKA_ID; ``KeyNotFound`` unless both halves exist."""
        if label is None and key_id is None:
            raise ValueError("give a label or a key id")
        with token_session(self._config, "find an HSM key pair") as session:
            public = _objects(session, ObjectClass.PUBLIC_KEY, label=label, key_id=key_id)
            if len(public) > 1:
                raise Conflict(f"several HSM key pairs match {_what(label, key_id)}")
            if not public or not _objects(
                session, ObjectClass.PRIVATE_KEY, key_id=bytes(public[0][Attribute.ID])
            ):
                raise KeyNotFound(f"no HSM key pair with {_what(label, key_id)}")
            return _describe(public[0])

    def sign(self, key_id: bytes, data: bytes) -> bytes:
        """ECDSA-SHA256 over ``data`` with the token's private key; a DER ECDSA-Sig-Value."""
        h = hashes.Hash(hashes.SHA256())
        h.update(data)
        digest = h.finalize()
        with token_session(self._config, "sign with an HSM key") as session:
            found = _objects(session, ObjectClass.PRIVATE_KEY, key_id=key_id)
            if not found or not isinstance(found[0], pkcs11.SignMixin):
                raise KeyNotFound(f"no HSM signing key with {_what(None, key_id)}")
            raw = found[0].sign(digest, mechanism=Mechanism.ECDSA)
        # CKM_ECDSA returns r || s, each as wide as the curve order.
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )


def _objects(
    session: pkcs11.Session,
    object_class: ObjectClass,
    *,
    label: str | None = None,
    key_id: bytes | None = None,
) -> list[pkcs11.Object]:
    template: dict[Attribute, object] = {
        Attribute.CLASS: object_class,
        Attribute.KEY_TYPE: KeyType.EC,
    }
    if label is not None:
        template[Attribute.LABEL] = label
    if key_id is not None:
        template[Attribute.ID] = key_id
    return list(session.get_objects(template))


def _describe(public: pkcs11.Object) -> HsmKeyPair:
    if not isinstance(public, pkcs11.PublicKey) or public[Attribute.EC_PARAMS] != _P256_PARAMS:
        raise UnsupportedAlgorithm("only ECDSA P-256 key pairs are supported in the HSM")
    return HsmKeyPair(
        label=public.label,
        key_id=bytes(public.id),
        algorithm=ECDSA_P256,
        public_key_der=encode_ec_public_key(public),
    )


def _what(label: str | None, key_id: bytes | None) -> str:
    parts = [f"label {label!r}"] if label is not None else []
    parts += [f"id {key_id.hex()}"] if key_id is not None else []
    return " and ".join(parts)
