"""GM/T 0009 ``SM2EnvelopedKey``: an SM2 key pair wrapped for a recipient's SM2 public key.

    SM2EnvelopedKey ::= SEQUENCE {
      symAlgID                AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1, NULL
      symEncryptedKey         SM2Cipher,            -- the SM4 key, SM2-encrypted to the recipient
      sm2PublicKey            SM2PublicKey,         -- BIT STRING 04||X||Y of the wrapped pair
      sm2EncryptedPrivateKey  BIT STRING }          -- SM4-ECB(d, 32 bytes), no padding

as gmsm's ``MarshalEnvelopedPrivateKey`` writes it (standards.md §3.1). A key-management
centre returns an escrowed encryption key this way, wrapped for the subscriber's signing
key. ECB is what the standard prescribes; it is safe here because the plaintext is one
uniformly random 32-byte scalar under a fresh single-use SM4 key.

``export_enveloped`` is the key-store operation behind ``KeyStore.export_enveloped`` (the
private key is unwrapped and enveloped inside the key store, never returned in the clear);
it lives here beside the format, using the key store's internals.
``open_enveloped_key`` is the subscriber's side, for clients and tests.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from asn1crypto import core

from keystore.model import Actor, Algorithm, Purpose
from trust import sm4
from trust.errors import DecryptionFailed, KeyPurposeMismatch, MalformedASN1, UnsupportedAlgorithm
from trust.keys import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    load_public_key,
    public_key_fingerprint,
)
from trust.keys.base import load_der
from trust.keys.sm2 import SM2PrivateKey, SM2PublicKey
from trust.sm2.backend import SM2Backend
from trust.sm2.encoding import parse_cipher

if TYPE_CHECKING:
    from keystore.service import KeyStore

SM4_ECB_OID = "1.2.156.10197.1.104.1"
_SCALAR_BYTES = 32


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class SM2EnvelopedKey(core.Sequence):
    _fields = [
        ("sym_alg_id", _AlgorithmIdentifier),
        ("sym_encrypted_key", core.Any),  # SM2Cipher, checked by trust.sm2.encoding
        ("sm2_public_key", core.OctetBitString),
        ("sm2_encrypted_private_key", core.OctetBitString),
    ]


def envelope_key(private: PrivateKey, recipient: PublicKey) -> bytes:
    """DER ``SM2EnvelopedKey`` of the SM2 key pair ``private`` for the SM2 key ``recipient``."""
    if not isinstance(private, SM2PrivateKey):
        raise UnsupportedAlgorithm("only SM2 key pairs are enveloped (GM/T 0009)")
    if recipient.algorithm is not KeyAlgorithm.SM2:
        raise UnsupportedAlgorithm("the envelope recipient must be an SM2 public key")
    sym_key = os.urandom(16)
    encrypted_key = recipient.encrypt(sym_key)
    encrypted_scalar = sm4.ecb_encrypt(sym_key, private.scalar())
    return bytes(
        SM2EnvelopedKey(
            {
                "sym_alg_id": {"algorithm": SM4_ECB_OID, "parameters": core.Null()},
                "sym_encrypted_key": core.Any.load(encrypted_key),
                "sm2_public_key": core.OctetBitString(private.public_key().point()),
                "sm2_encrypted_private_key": core.OctetBitString(encrypted_scalar),
            }
        ).dump()
    )


def open_enveloped_key(
    der: bytes, recipient: PrivateKey, *, backend: SM2Backend | None = None
) -> SM2PrivateKey:
    """The key pair inside ``der``, opened with the recipient's private key; refuses an
    envelope whose private key does not match its stated public key."""
    envelope = load_der(SM2EnvelopedKey, der, "SM2EnvelopedKey")
    if envelope["sym_alg_id"]["algorithm"].dotted != SM4_ECB_OID:
        raise UnsupportedAlgorithm("SM2EnvelopedKey: only SM4-ECB is supported")
    encrypted_key = envelope["sym_encrypted_key"].dump()
    parse_cipher(encrypted_key)  # structure check before any decryption
    sym_key = recipient.decrypt(encrypted_key)
    encrypted_scalar = envelope["sm2_encrypted_private_key"].native
    if len(sym_key) != 16 or len(encrypted_scalar) != _SCALAR_BYTES:
        raise MalformedASN1("SM2EnvelopedKey: wrong key or private key length")
    private = SM2PrivateKey.from_scalar(sm4.ecb_decrypt(sym_key, encrypted_scalar), backend)
    stated = SM2PublicKey.from_point(envelope["sm2_public_key"].native, backend)
    if private.public_key().point() != stated.point():
        raise DecryptionFailed("SM2EnvelopedKey: the private key does not match its public key")
    return private


def export_enveloped(store: KeyStore, key_id: str, recipient_spki: bytes, actor: Actor) -> bytes:
    """The key store's escrow export: the SM2 encryption key ``key_id`` (primary version)
    as an ``SM2EnvelopedKey`` for ``recipient_spki``, audited as ``key.export_enveloped``.
    Only the key's owner or a key administrator may; the key leaves only wrapped."""
    entry = store._entry(key_id, fresh=True)
    info = entry.info
    if info.purpose is not Purpose.ENCRYPT or info.algorithm is not Algorithm.SM2:
        raise KeyPurposeMismatch(f"key {key_id} is not an escrowed SM2 encryption key")
    if not (actor.is_admin or actor.id == info.owner):
        store._deny(actor, "key.export_enveloped", key_id)
    recipient = load_public_key(recipient_spki)
    der = envelope_key(store._private(entry, info.primary_version), recipient)
    store._record(
        actor,
        "key.export_enveloped",
        key_id,
        {"version": info.primary_version, "recipient": public_key_fingerprint(recipient)},
    )
    return der
