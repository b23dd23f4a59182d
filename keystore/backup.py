"""Encrypted backups of the whole key store, and restore into an empty one.

Bundle layout::

    MAGIC | header length (4 bytes, big-endian) | header (JSON) | ciphertext

The header names the format version, the KDF and its parameters (scrypt: salt,
n, r, p), the cipher (SM4-GCM) and its nonce; it is not secret but it is
authenticated (it is the GCM associated data, with the magic and the length).
The backup key is scrypt(passphrase) and nothing else: the bundle does not
depend on the master key, so it restores into a store with a different one.
The plaintext is JSON of every key record with each live version's PKCS#8
(SM4: raw key) in base64; it exists only in memory.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keystore.model import Actor, Algorithm, KeyInfo, KeyState, KeyVersionInfo, Purpose
from keystore.service import KeyStore
from trust import sm4
from trust.errors import (
    BackupMalformed,
    BackupPassphraseInvalid,
    BadRequest,
    DecryptionFailed,
    Forbidden,
    KeystoreNotEmpty,
)

MAGIC = b"TRUST-KEYSTORE-BACKUP\n"
FORMAT = 1
# scrypt cost: about 0.1 s and 32 MiB per derivation; bounds refuse a bundle that
# would make restore burn unbounded memory or time.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAX_N, _MAX_R, _MAX_P = 2**20, 16, 4
_MAX_HEADER = 4096
_MIN_PASSPHRASE = 12


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=sm4.KEY_SIZE, n=n, r=r, p=p).derive(passphrase.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def create_backup(
    store: KeyStore,
    passphrase: str,
    actor: Actor,
    *,
    scrypt_n: int = SCRYPT_N,
    scrypt_r: int = SCRYPT_R,
    scrypt_p: int = SCRYPT_P,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """A bundle of every key (admins only); ``progress(done, total)`` after each key."""
    if not actor.is_admin:
        raise Forbidden("only a key administrator may back up the key store")
    if len(passphrase) < _MIN_PASSPHRASE:
        raise BadRequest(f"a backup passphrase has at least {_MIN_PASSPHRASE} characters")
    keys = [_encode_key(info, plain) for info, plain in store._export_all(progress)]
    salt, nonce = os.urandom(16), os.urandom(sm4.GCM_NONCE_SIZE)
    header = json.dumps(
        {
            "format": FORMAT,
            "kdf": {
                "name": "scrypt",
                "salt": _b64(salt),
                "n": scrypt_n,
                "r": scrypt_r,
                "p": scrypt_p,
            },
            "cipher": "SM4-GCM",
            "nonce": _b64(nonce),
            "keys": len(keys),
        },
        sort_keys=True,
    ).encode()
    prefix = MAGIC + len(header).to_bytes(4, "big") + header
    key = _scrypt(passphrase, salt, scrypt_n, scrypt_r, scrypt_p)
    body = sm4.gcm_encrypt(key, nonce, json.dumps(keys).encode(), prefix)
    store._record(actor, "keystore.backup", None, {"keys": len(keys)})
    return prefix + body


def restore_backup(
    store: KeyStore,
    bundle: bytes,
    passphrase: str,
    actor: Actor,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Restore a bundle into an empty store (same key ids, versions, states and public keys;
    secrets sealed anew under the store's master key). Returns the number of keys.
    "Empty" allows the audit key ``trustctl init`` makes: it stays, and checkpoints it
    signed still verify; the oldest active audit key signs from then on.
    ``progress(done, total)`` follows the sealing of each key; all of them are then
    inserted in one transaction, so a failed restore leaves the store empty."""
    if not actor.is_admin:
        raise Forbidden("only a key administrator may restore the key store")
    header, prefix = _parse_header(bundle)
    kdf = header["kdf"]
    key = _scrypt(passphrase, base64.b64decode(kdf["salt"]), kdf["n"], kdf["r"], kdf["p"])
    try:
        plain = sm4.gcm_decrypt(
            key, base64.b64decode(header["nonce"]), bundle[len(prefix) :], prefix
        )
    except DecryptionFailed:
        raise BackupPassphraseInvalid(
            "the backup does not decrypt: wrong passphrase, or the bundle is damaged"
        ) from None
    items = [_decode_key(k) for k in json.loads(plain)]
    if not store._restorable([info.id for info, _ in items]):
        raise KeystoreNotEmpty("restore needs an empty key store (its own audit key aside)")
    store._insert_restored(items, progress)
    store._record(actor, "keystore.restore", None, {"keys": len(items)})
    return len(items)


def _parse_header(bundle: bytes) -> tuple[dict[str, Any], bytes]:
    if not bundle.startswith(MAGIC) or len(bundle) < len(MAGIC) + 4:
        raise BackupMalformed("not a key store backup bundle")
    size = int.from_bytes(bundle[len(MAGIC) : len(MAGIC) + 4], "big")
    if size > _MAX_HEADER or len(bundle) < len(MAGIC) + 4 + size:
        raise BackupMalformed("backup bundle header is truncated or too long")
    prefix = bundle[: len(MAGIC) + 4 + size]
    try:
        header = json.loads(prefix[len(MAGIC) + 4 :])
        kdf = header["kdf"]
        ok = (
            header["format"] == FORMAT
            and header["cipher"] == "SM4-GCM"
            and kdf["name"] == "scrypt"
            and all(isinstance(kdf[k], int) for k in ("n", "r", "p"))
            and 2 <= kdf["n"] <= _MAX_N
            and 1 <= kdf["r"] <= _MAX_R
            and 1 <= kdf["p"] <= _MAX_P
            and len(base64.b64decode(header["nonce"], validate=True)) == sm4.GCM_NONCE_SIZE
            and base64.b64decode(kdf["salt"], validate=True)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise BackupMalformed("backup bundle header is not understood")
    return header, prefix


def _encode_key(info: KeyInfo, plain: dict[int, bytes]) -> dict[str, Any]:
    return {
        "id": info.id,
        "label": info.label,
        "algorithm": info.algorithm.value,
        "purpose": info.purpose.value,
        "owner": info.owner,
        "permitted": sorted(info.permitted_principals),
        "state": info.state.value,
        "created_at": _time(info.created_at),
        "activation_at": _time(info.activation_at),
        "expires_at": _time(info.expires_at),
        "rotation_seconds": (
            int(info.rotation_period.total_seconds()) if info.rotation_period else None
        ),
        "rotated_at": _time(info.rotated_at),
        "compromised_at": _time(info.compromised_at),
        "destroy_after": _time(info.destroy_after),
        "destroyed_at": _time(info.destroyed_at),
        "imported": info.imported,
        "primary_version": info.primary_version,
        "state_reason": info.state_reason,
        "versions": [
            {
                "version": v.version,
                "created_at": _time(v.created_at),
                "public_key": _b64(v.public_key_der) if v.public_key_der is not None else None,
                "fingerprint": v.fingerprint,
                "destroyed_at": _time(v.destroyed_at),
                "secret": _b64(plain[v.version]) if v.version in plain else None,
            }
            for v in info.versions
        ],
    }


def _decode_key(k: dict[str, Any]) -> tuple[KeyInfo, dict[int, bytes]]:
    versions = tuple(
        KeyVersionInfo(
            version=v["version"],
            created_at=_parse_time(v["created_at"]) or datetime.min,
            public_key_der=base64.b64decode(v["public_key"]) if v["public_key"] else None,
            fingerprint=v["fingerprint"],
            kek_id=None,
            destroyed_at=_parse_time(v["destroyed_at"]),
        )
        for v in k["versions"]
    )
    plain = {v["version"]: base64.b64decode(v["secret"]) for v in k["versions"] if v["secret"]}
    info = KeyInfo(
        id=k["id"],
        label=k["label"],
        algorithm=Algorithm(k["algorithm"]),
        purpose=Purpose(k["purpose"]),
        owner=k["owner"],
        permitted_principals=frozenset(k["permitted"]),
        state=KeyState(k["state"]),
        created_at=_parse_time(k["created_at"]) or datetime.min,
        activation_at=_parse_time(k["activation_at"]),
        expires_at=_parse_time(k["expires_at"]),
        rotation_period=(
            timedelta(seconds=k["rotation_seconds"]) if k["rotation_seconds"] is not None else None
        ),
        rotated_at=_parse_time(k["rotated_at"]) or datetime.min,
        compromised_at=_parse_time(k["compromised_at"]),
        destroy_after=_parse_time(k["destroy_after"]),
        destroyed_at=_parse_time(k["destroyed_at"]),
        imported=k["imported"],
        primary_version=k["primary_version"],
        versions=versions,
        state_reason=k.get("state_reason"),  # absent from bundles made before it existed
    )
    return info, plain
