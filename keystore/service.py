"""The key store service: key records, versions, states, and every use of a private key.

Plain methods with typed results, so an HTTP router or the CLI only translates.
Every method takes the acting ``Actor``; management needs an admin role (or
ownership of the key), use (sign, decrypt) needs the caller to be the owner, a
permitted principal, or to hold a grant on the key. Private keys never leave:
callers get signatures, plaintexts and public keys.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, CursorResult, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from keystore import envelope
from keystore.audit import (
    SYSTEM_ACTOR,
    AuditSink,
    SignatureAudit,
    SignatureRecord,
)
from keystore.cache import ALL_KEYS, CHANNEL, CachedKey, KeyCache
from keystore.envelope import KekRing
from keystore.escrow import export_enveloped
from keystore.kek import KekProvider, build_kek_provider
from keystore.model import (
    ALGORITHM_OF,
    MAX_REASON,
    Actor,
    Algorithm,
    GenerateRequest,
    KeyInfo,
    KeyState,
    KeyVersionInfo,
    PublicKeyResult,
    Purpose,
    RewrapProgress,
    SignInput,
    SignResult,
    VerifyResult,
)
from keystore.schema import keystore_key, keystore_version
from keystore.states import check_transition, refusal
from trust import sm4
from trust.clock import Clock
from trust.coordination import Coordination, Subscription
from trust.db import Database
from trust.errors import (
    BadRequest,
    Conflict,
    DecryptionFailed,
    DestructionNotScheduled,
    Forbidden,
    InvalidSignature,
    KeyDestroyed,
    KeyExpired,
    KeyNotActive,
    KeyNotFound,
    KeyPurposeMismatch,
    KeySuspended,
    TrustError,
    UnsupportedAlgorithm,
)
from trust.keys import PrivateKey, PublicKey, SignatureScheme, generate, load_private_key
from trust.keys import load_public_key as load_spki
from trust.settings import Settings
from trust.sm2.backend import SM2Backend
from trust.sm3 import sm3

log = logging.getLogger(__name__)

_ID_PREFIX = "key_"
# SM4 ciphertexts from ``encrypt``: format byte, version (4 bytes), nonce, GCM output.
_SM4_FORMAT = 1
_SM4_HEADER = 1 + 4 + sm4.GCM_NONCE_SIZE
_SM4_AAD_LABEL = b"trust-keystore sm4-data v1\x00"
_BULK_AUDIT_IDS = 100  # key ids per audit record of a bulk generation (16 KiB details cap)

S = KeyState


def new_key_id() -> str:
    return _ID_PREFIX + secrets.token_hex(12)


def _raw_public(public: PublicKey) -> bytes:
    """The point 04||X||Y of an EC key (SPKI BIT STRING contents); the SPKI DER for RSA."""
    from asn1crypto import keys as asn1_keys

    der = public.public_bytes_spki()
    if public.algorithm.startswith("rsa"):
        return der
    info = asn1_keys.PublicKeyInfo.load(der)
    point: bytes = info["public_key"].native
    return point


class KeyStore:
    """One key store over one database; thread-safe; one instance per worker process.

    ``coordination`` carries cache invalidations between workers (subscribed here,
    published on every change); without it the cache only serves this process.
    """

    def __init__(
        self,
        db: Database,
        kek: KekRing | KekProvider,
        *,
        clock: Clock,
        audit: AuditSink,
        coordination: Coordination | None = None,
        cache_ttl: float = 60.0,
        destruction_wait: timedelta = timedelta(days=7),
        sm2_backend: SM2Backend | None = None,
        audit_mode: Literal["durable", "write_behind"] = "durable",
        write_behind_seconds: float = 0.05,
    ) -> None:
        self._db = db
        self._ring = kek if isinstance(kek, KekRing) else KekRing(kek)
        self._clock = clock
        self._audit = audit
        # Durable by default: sign returns after its audit record commits (keystore.audit).
        self._signature_audit = SignatureAudit(
            audit, write_behind=write_behind_seconds if audit_mode == "write_behind" else None
        )
        self._coordination = coordination
        self._cache = KeyCache(cache_ttl)
        self._destruction_wait = destruction_wait
        self._sm2 = sm2_backend
        self._subscription: Subscription | None = None
        if coordination is not None:
            self._subscription = coordination.subscribe(CHANNEL, self._cache.invalidate)
        self._rotation_guards: list[Callable[[str], None]] = []

    def close(self) -> None:
        self._signature_audit.close()
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    @property
    def kek_ring(self) -> KekRing:
        return self._ring

    # --- creation --------------------------------------------------------------

    def generate(self, request: GenerateRequest, actor: Actor) -> KeyInfo:
        """A new key with version 1 made here."""
        self._require_admin(actor, "key.generate")
        key_id = self._insert_new([request], [self._make_secret(request.algorithm)], actor)[0]
        self._record(actor, "key.generate", key_id, self._summary(request))
        return self.get(key_id, actor)

    def generate_many(self, request: GenerateRequest, count: int, actor: Actor) -> list[str]:
        """``count`` keys alike (provisioning, tests, benchmarks): one bulk insert, and one
        audit record per hundred keys instead of one per key."""
        self._require_admin(actor, "key.generate")
        if count < 1:
            raise BadRequest("count must be positive")
        material = [self._make_secret(request.algorithm) for _ in range(count)]
        ids = self._insert_new([request] * count, material, actor)
        for start in range(0, count, _BULK_AUDIT_IDS):
            chunk = ids[start : start + _BULK_AUDIT_IDS]
            self._record(
                actor, "key.generate_many", None, {**self._summary(request), "key_ids": chunk}
            )
        return ids

    def import_key(
        self, request: GenerateRequest, pkcs8: bytes, actor: Actor, *, allow_import: bool = False
    ) -> KeyInfo:
        """A key made elsewhere (PKCS#8, DER or PEM; SM4: the 16 raw bytes), recorded as
        imported. ``allow_import`` must be set: an imported key may exist outside the store."""
        self._require_admin(actor, "key.import")
        if not allow_import:
            raise BadRequest("importing a key needs allow_import=True")
        secret: PrivateKey | bytes
        if request.algorithm is Algorithm.SM4:
            if len(pkcs8) != sm4.KEY_SIZE:
                raise BadRequest(f"an SM4 key is {sm4.KEY_SIZE} bytes")
            secret = bytes(pkcs8)
        else:
            secret = load_private_key(pkcs8, sm2_backend=self._sm2)
            if ALGORITHM_OF.get(secret.algorithm) is not request.algorithm:
                raise BadRequest(f"the key is {secret.algorithm}, not {request.algorithm}")
        key_id = self._insert_new([request], [secret], actor, imported=True)[0]
        self._record(actor, "key.import", key_id, self._summary(request))
        return self.get(key_id, actor)

    def _make_secret(self, algorithm: Algorithm) -> PrivateKey | bytes:
        asym = algorithm.asymmetric
        if asym is None:
            return os.urandom(sm4.KEY_SIZE)
        return generate(asym, sm2_backend=self._sm2)

    def _version_row(
        self, key_id: str, version: int, algorithm: Algorithm, secret: PrivateKey | bytes
    ) -> dict[str, Any]:
        now = self._clock.now()
        if isinstance(secret, bytes):
            plain, public, fingerprint = secret, None, None
        else:
            plain = secret.private_bytes_pkcs8()
            public = secret.public_bytes_spki()
            fingerprint = sm3(public).hex()
        sealed = envelope.seal(self._ring, plain, envelope.aad(key_id, version, algorithm))
        return {
            "key_id": key_id,
            "version": version,
            "created_at": now,
            "public_key": public,
            "fingerprint": fingerprint,
            "sealed_key": sealed.sealed_key,
            "wrapped_data_key": sealed.wrapped_data_key,
            "kek_id": sealed.kek_id,
            "destroyed_at": None,
        }

    def _insert_new(
        self,
        requests: Sequence[GenerateRequest],
        material: Sequence[PrivateKey | bytes],
        actor: Actor,
        *,
        imported: bool = False,
    ) -> list[str]:
        now = self._clock.now()
        keys: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        for request, secret in zip(requests, material, strict=True):
            _check_request(request)
            key_id = new_key_id()
            pending = request.activation_at is not None and request.activation_at > now
            keys.append(
                {
                    "id": key_id,
                    "label": request.label,
                    "algorithm": request.algorithm.value,
                    "purpose": request.purpose.value,
                    "owner": request.owner or actor.id,
                    "permitted": json.dumps(sorted(request.permitted_principals)),
                    "state": (S.PRE_ACTIVATION if pending else S.ACTIVE).value,
                    "created_at": now,
                    "activation_at": request.activation_at or now,
                    "expires_at": request.expires_at,
                    "rotation_seconds": (
                        int(request.rotation_period.total_seconds())
                        if request.rotation_period
                        else None
                    ),
                    "rotated_at": now,
                    "compromised_at": None,
                    "destroy_after": None,
                    "destroyed_at": None,
                    "imported": imported,
                    "primary_version": 1,
                }
            )
            versions.append(self._version_row(key_id, 1, request.algorithm, secret))
        with self._db.session() as s:
            s.execute(insert(keystore_key), keys)
            s.execute(insert(keystore_version), versions)
        return [k["id"] for k in keys]

    # --- reading ---------------------------------------------------------------

    def get(self, key_id: str, actor: Actor) -> KeyInfo:
        """The key's metadata (never its material): for admins, the owner and permitted users."""
        info = self._entry(key_id).info
        if not (actor.is_admin or _may_use(info, actor)):
            raise Forbidden(f"not allowed to read key {key_id}")
        return info

    def list_keys(self, actor: Actor) -> list[KeyInfo]:
        """Every key the actor may see, oldest first."""
        with self._db.session() as s:
            ids = s.execute(select(keystore_key.c.id).order_by(keystore_key.c.created_at))
            infos = [self._load(s.connection(), key_id) for (key_id,) in ids]
        return [i for i in infos if actor.is_admin or _may_use(i, actor)]

    def public_key(self, key_id: str, version: int | None = None) -> PublicKeyResult:
        """A version's public key (the primary by default); destroyed keys keep theirs."""
        info = self._entry(key_id).info
        number = info.primary_version if version is None else version
        v = info.version(number)
        if v is None:
            raise KeyNotFound(f"key {key_id} has no version {number}")
        if v.public_key_der is None:
            raise UnsupportedAlgorithm(f"{info.algorithm} keys have no public key")
        public = load_spki(v.public_key_der, sm2_backend=self._sm2)
        return PublicKeyResult(
            key_id=key_id,
            version=number,
            algorithm=info.algorithm,
            spki_der=v.public_key_der,
            spki_pem=public.public_bytes_spki(pem=True),
            raw=_raw_public(public),
        )

    # --- use -------------------------------------------------------------------

    def sign(
        self,
        key_id: str,
        data: bytes,
        actor: Actor,
        *,
        prehashed: bool = False,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
    ) -> SignResult:
        """Sign ``data`` (or, with ``prehashed``, the digest ``data``: SM2 e = SM3(Z||M),
        ECDSA/RSA the message hash) with the primary version. Audited before returning."""
        return self.sign_many(
            key_id, [SignInput(data, prehashed, signer_id)], actor, scheme=scheme
        )[0]

    def sign_many(
        self,
        key_id: str,
        items: Sequence[SignInput],
        actor: Actor,
        *,
        scheme: SignatureScheme | None = None,
    ) -> list[SignResult]:
        """Sign every item with the primary version: one permission and state check, one
        key lookup, and the signatures audited together (one ``key.sign.batch`` record, more
        past a few hundred: see ``keystore.audit``) before any is returned. All or nothing:
        a refusal or a failed item returns no signature."""
        entry = self._entry(key_id)
        info = entry.info
        if not _may_use(info, actor):
            self._deny(actor, "key.sign", key_id)
        if not info.purpose.signs or not info.algorithm.can_sign:
            raise KeyPurposeMismatch(f"key {key_id} is not a signing key")
        self._check_signing_state(info)
        if not items:
            return []
        version = info.primary_version
        private = self._private(entry, version)
        # Committed by the audit writer while we sign; returned only once committed.
        pending = self._signature_audit.submit(
            [SignatureRecord(actor.id, key_id, version, i.data, i.prehashed) for i in items]
        )
        try:
            signatures = [
                private.sign_digest(item.data, scheme=scheme)
                if item.prehashed
                else private.sign(item.data, signer_id=item.signer_id, scheme=scheme)
                for item in items
            ]
        except TrustError as exc:
            # Bad input (a digest of the wrong size, a scheme the key lacks): the request's
            # record is written already, so a failure record with the code follows it.
            with suppress(TrustError):
                pending.wait()
            details = {"version": version, "count": len(items), "code": exc.code}
            self._record(actor, "key.sign", key_id, details, outcome="failure")
            raise
        pending.wait()
        return [SignResult(key_id, version, info.algorithm, sig) for sig in signatures]

    def verify(
        self,
        key_id: str,
        data: bytes,
        signature: bytes,
        actor: Actor,
        *,
        prehashed: bool = False,
        signer_id: bytes | None = None,
        scheme: SignatureScheme | None = None,
        version: int | None = None,
    ) -> VerifyResult:
        """Check a signature against one version, or against every version whose material
        is not destroyed (newest first). Raises ``InvalidSignature``."""
        info = self._entry(key_id).info
        try:
            number = self._verify(info, data, signature, prehashed, signer_id, scheme, version)
        except InvalidSignature:
            self._record(actor, "key.verify", key_id, {"valid": False}, outcome="failure")
            raise
        self._record(actor, "key.verify", key_id, {"valid": True, "version": number})
        return VerifyResult(key_id, number)

    def _verify(
        self,
        info: KeyInfo,
        data: bytes,
        signature: bytes,
        prehashed: bool,
        signer_id: bytes | None,
        scheme: SignatureScheme | None,
        version: int | None,
    ) -> int:
        if not info.algorithm.can_sign:
            raise KeyPurposeMismatch(f"key {info.id} does not sign")
        if version is not None and info.version(version) is None:
            # A version that never existed is not found; only a real one can be destroyed.
            raise KeyNotFound(f"key {info.id} has no version {version}")
        candidates = [v for v in info.live_versions if version is None or v.version == version]
        if not candidates:
            raise KeyDestroyed(f"key {info.id} has no version left to verify with")
        for v in candidates:
            assert v.public_key_der is not None
            public = load_spki(v.public_key_der, sm2_backend=self._sm2)
            try:
                if prehashed:
                    public.verify_digest(signature, data, scheme=scheme)
                else:
                    public.verify(signature, data, signer_id=signer_id, scheme=scheme)
                return v.version
            except InvalidSignature:
                continue
        raise InvalidSignature()

    def encrypt(self, key_id: str, plaintext: bytes, actor: Actor, *, aad: bytes = b"") -> bytes:
        """SM4 keys: SM4-GCM under the primary version (``aad`` authenticated too). SM2/RSA:
        public-key encryption to the primary version (GM/T 0009 / OAEP-SHA256; ``aad`` unused)."""
        entry = self._entry(key_id)
        info = entry.info
        if info.purpose is not Purpose.ENCRYPT or not info.algorithm.can_encrypt:
            raise KeyPurposeMismatch(f"key {key_id} is not an encryption key")
        if not _may_use(info, actor):
            self._deny(actor, "key.encrypt", key_id)
        self._check_signing_state(info)  # protecting new data needs an active key
        version = info.primary_version
        if info.algorithm is Algorithm.SM4:
            key = self._secret(entry, version)
            assert isinstance(key, bytes)
            nonce = os.urandom(sm4.GCM_NONCE_SIZE)
            header = bytes([_SM4_FORMAT]) + version.to_bytes(4, "big") + nonce
            body = sm4.gcm_encrypt(key, nonce, plaintext, _sm4_aad(key_id, version, aad))
            out = header + body
        else:
            der = info.version(version)
            assert der is not None and der.public_key_der is not None
            out = load_spki(der.public_key_der, sm2_backend=self._sm2).encrypt(plaintext)
        self._record(actor, "key.encrypt", key_id, {"version": version})
        return out

    def export_enveloped(self, key_id: str, recipient_spki: bytes, actor: Actor) -> bytes:
        """Key escrow: the SM2 encryption key ``key_id`` as a GM/T 0009 ``SM2EnvelopedKey``
        for the SM2 key ``recipient_spki``, never in the clear (``keystore/escrow.py``);
        its owner or a key administrator only, audited as ``key.export_enveloped``."""
        return export_enveloped(self, key_id, recipient_spki, actor)

    def decrypt(
        self,
        key_id: str,
        ciphertext: bytes,
        actor: Actor,
        *,
        aad: bytes = b"",
        version: int | None = None,
    ) -> bytes:
        """Decrypt with the version named in an SM4 ciphertext, or for SM2/RSA with
        ``version`` or each version whose material still exists, newest first."""
        entry = self._entry(key_id)
        info = entry.info
        if info.purpose is not Purpose.ENCRYPT or not info.algorithm.can_encrypt:
            raise KeyPurposeMismatch(f"key {key_id} is not an encryption key")
        if not _may_use(info, actor):
            self._deny(actor, "key.decrypt", key_id)
        if info.state is S.SUSPENDED:
            raise KeySuspended(f"key {key_id} is suspended")
        if info.state in (S.PRE_ACTIVATION, S.DESTROYED):
            raise KeyNotActive(f"key {key_id} is {info.state}")
        if info.algorithm is Algorithm.SM4:
            number, plaintext = self._sm4_decrypt(entry, ciphertext, aad)
        else:
            number, plaintext = self._asym_decrypt(entry, ciphertext, version)
        self._record(actor, "key.decrypt", key_id, {"version": number})
        return plaintext

    def _sm4_decrypt(self, entry: CachedKey, ciphertext: bytes, aad: bytes) -> tuple[int, bytes]:
        if len(ciphertext) < _SM4_HEADER + sm4.GCM_TAG_SIZE or ciphertext[0] != _SM4_FORMAT:
            raise DecryptionFailed("not a ciphertext of this key store")
        number = int.from_bytes(ciphertext[1:5], "big")
        v = entry.info.version(number)
        if v is None or v.destroyed_at is not None:
            raise DecryptionFailed("the key version of this ciphertext does not exist (any more)")
        key = self._secret(entry, number)
        assert isinstance(key, bytes)
        nonce = ciphertext[5:_SM4_HEADER]
        associated = _sm4_aad(entry.info.id, number, aad)
        return number, sm4.gcm_decrypt(key, nonce, ciphertext[_SM4_HEADER:], associated)

    def _asym_decrypt(
        self, entry: CachedKey, ciphertext: bytes, version: int | None
    ) -> tuple[int, bytes]:
        if version is not None and entry.info.version(version) is None:
            raise KeyNotFound(f"key {entry.info.id} has no version {version}")
        candidates = [
            v.version for v in entry.info.live_versions if version is None or v.version == version
        ]
        for number in candidates:
            try:
                return number, self._private(entry, number).decrypt(ciphertext)
            except DecryptionFailed:
                continue
        raise DecryptionFailed("no version of the key decrypts this ciphertext")

    # --- lifecycle -------------------------------------------------------------

    def guard_rotation(self, guard: Callable[[str], None]) -> None:
        """Have ``guard(key_id)`` approve every ``rotate``: a domain that certified one
        version of a key (a TSA unit) raises a ``TrustError`` naming its own rotation."""
        self._rotation_guards.append(guard)

    def rotate(self, key_id: str, actor: Actor) -> KeyInfo:
        """A new version made here becomes primary; older versions still verify and decrypt."""
        info = self._entry(key_id, fresh=True).info
        self._require_manager(info, actor, "key.rotate")
        for guard in self._rotation_guards:
            try:
                guard(key_id)
            except TrustError as exc:
                self._record(actor, "key.rotate", key_id, {"code": exc.code}, outcome="failure")
                raise
        self._rotate(info, actor, "key.rotate")
        return self._entry(key_id, fresh=True).info

    def _rotate(self, info: KeyInfo, actor: Actor, action: str) -> int:
        if info.state is not S.ACTIVE:
            raise KeyNotActive(f"only an active key is rotated; key {info.id} is {info.state}")
        number = max(v.version for v in info.versions) + 1
        row = self._version_row(info.id, number, info.algorithm, self._make_secret(info.algorithm))
        try:
            with self._db.session() as s:
                s.execute(insert(keystore_version), [row])
                done = _count(
                    s.execute(
                        update(keystore_key)
                        .where(keystore_key.c.id == info.id, keystore_key.c.state == S.ACTIVE.value)
                        .values(primary_version=number, rotated_at=self._clock.now())
                    )
                )
                if not done:
                    raise KeyNotActive(f"key {info.id} changed state during rotation")
        except IntegrityError:
            raise Conflict(f"key {info.id} is being rotated by someone else") from None
        self._changed(info.id)
        self._record(actor, action, info.id, {"version": number})
        return number

    def rotate_due(self, actor: Actor | None = None) -> list[str]:
        """Rotate every active key whose rotation period has run out since its last rotation."""
        actor = actor or Actor(SYSTEM_ACTOR, frozenset({"admin"}))
        now = self._clock.now()
        with self._db.session() as s:
            rows = s.execute(
                select(
                    keystore_key.c.id, keystore_key.c.rotated_at, keystore_key.c.rotation_seconds
                ).where(
                    keystore_key.c.state == S.ACTIVE.value,
                    keystore_key.c.rotation_seconds.is_not(None),
                )
            ).all()
        rotated = []
        for key_id, rotated_at, seconds in rows:
            if rotated_at + timedelta(seconds=seconds) <= now:
                self._rotate(self._entry(key_id, fresh=True).info, actor, "key.rotate_scheduled")
                rotated.append(key_id)
        return rotated

    # Each state change takes an optional free-text ``reason``: stored as the key's
    # ``state_reason`` (the reason of its latest change; none given clears it) and audited.

    def activate(self, key_id: str, actor: Actor, *, reason: str | None = None) -> KeyInfo:
        return self._transition(key_id, S.ACTIVE, actor, "key.activate", reason)

    def suspend(self, key_id: str, actor: Actor, *, reason: str | None = None) -> KeyInfo:
        return self._transition(key_id, S.SUSPENDED, actor, "key.suspend", reason)

    def resume(self, key_id: str, actor: Actor, *, reason: str | None = None) -> KeyInfo:
        info = self._entry(key_id, fresh=True).info
        if info.state is not S.SUSPENDED:
            check_transition(key_id, info.state, S.SUSPENDED)  # names why it is not suspended
            raise KeyNotActive(f"key {key_id} is not suspended")
        return self._transition(key_id, S.ACTIVE, actor, "key.resume", reason)

    def deactivate(self, key_id: str, actor: Actor, *, reason: str | None = None) -> KeyInfo:
        return self._transition(key_id, S.DEACTIVATED, actor, "key.deactivate", reason)

    def mark_compromised(
        self,
        key_id: str,
        actor: Actor,
        *,
        compromised_at: datetime | None = None,
        reason: str | None = None,
    ) -> KeyInfo:
        """Record a compromise and when it happened (default now); the key never signs again."""
        when = compromised_at or self._clock.now()
        return self._transition(
            key_id,
            S.COMPROMISED,
            actor,
            "key.compromise",
            reason,
            {"compromised_at": when},
            {"compromised_at": when.isoformat()},
        )

    def transition(
        self, key_id: str, target: KeyState, actor: Actor, *, reason: str | None = None
    ) -> KeyInfo:
        """Move to ``target`` directly (destroyed: after the waiting period, see
        ``schedule_destruction``); the state machine decides."""
        if target is S.DESTROYED:
            return self.schedule_destruction(key_id, actor, reason=reason)
        if target is S.COMPROMISED:
            return self.mark_compromised(key_id, actor, reason=reason)
        return self._transition(key_id, target, actor, f"key.state.{target.value}", reason)

    def _transition(
        self,
        key_id: str,
        target: KeyState,
        actor: Actor,
        action: str,
        reason: str | None,
        values: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> KeyInfo:
        _check_reason(reason)
        info = self._entry(key_id, fresh=True).info
        self._require_manager(info, actor, action)
        check_transition(key_id, info.state, target)
        with self._db.session() as s:
            done = _count(
                s.execute(
                    update(keystore_key)
                    .where(keystore_key.c.id == key_id, keystore_key.c.state == info.state.value)
                    .values(state=target.value, state_reason=reason, **(values or {}))
                )
            )
        if not done:
            raise Conflict(f"key {key_id} changed state meanwhile; retry")
        self._changed(key_id)
        self._record(
            actor, action, key_id, {"from": info.state.value, **_reason(reason), **(details or {})}
        )
        return self._entry(key_id, fresh=True).info

    def schedule_destruction(
        self,
        key_id: str,
        actor: Actor,
        *,
        wait: timedelta | None = None,
        reason: str | None = None,
    ) -> KeyInfo:
        """Destroy the key's material after the waiting period (``destroy_due``); only keys
        the state machine lets go to destroyed (pre-activation, deactivated, compromised)."""
        _check_reason(reason)
        info = self._entry(key_id, fresh=True).info
        self._require_manager(info, actor, "key.destroy.schedule")
        check_transition(key_id, info.state, S.DESTROYED)
        after = self._clock.now() + (self._destruction_wait if wait is None else wait)
        with self._db.session() as s:
            s.execute(
                update(keystore_key)
                .where(keystore_key.c.id == key_id)
                .values(destroy_after=after, state_reason=reason)
            )
        self._changed(key_id)
        self._record(
            actor,
            "key.destroy.schedule",
            key_id,
            {"destroy_after": after.isoformat(), **_reason(reason)},
        )
        return self._entry(key_id, fresh=True).info

    def cancel_destruction(self, key_id: str, actor: Actor) -> KeyInfo:
        info = self._entry(key_id, fresh=True).info
        self._require_manager(info, actor, "key.destroy.cancel")
        with self._db.session() as s:
            done = _count(
                s.execute(
                    update(keystore_key)
                    .where(
                        keystore_key.c.id == key_id,
                        keystore_key.c.destroy_after.is_not(None),
                        keystore_key.c.state != S.DESTROYED.value,
                    )
                    .values(destroy_after=None)
                )
            )
        if not done:
            raise DestructionNotScheduled(f"no destruction is scheduled for key {key_id}")
        self._changed(key_id)
        self._record(actor, "key.destroy.cancel", key_id, {})
        return self._entry(key_id, fresh=True).info

    def destroy_due(self) -> list[str]:
        """Erase the material of every key whose destruction time has come; metadata and
        public keys stay. Run periodically (CLI/scheduler)."""
        now = self._clock.now()
        with self._db.session() as s:
            due = s.execute(
                select(keystore_key.c.id, keystore_key.c.state).where(
                    keystore_key.c.destroy_after <= now,
                    keystore_key.c.state != S.DESTROYED.value,
                )
            ).all()
        destroyed = []
        for key_id, state in due:
            if refusal(KeyState(state), S.DESTROYED) is not None:
                log.warning("key %s is due for destruction but is %s; left alone", key_id, state)
                continue
            with self._db.session() as s:
                if self._db.dialect == "sqlite":
                    # Overwrite freed pages instead of leaving the old blobs in the file.
                    s.execute(_SECURE_DELETE)
                done = _count(
                    s.execute(
                        update(keystore_key)
                        .where(keystore_key.c.id == key_id, keystore_key.c.state == state)
                        .values(state=S.DESTROYED.value, destroyed_at=now, destroy_after=None)
                    )
                )
                if done:
                    s.execute(
                        update(keystore_version)
                        .where(keystore_version.c.key_id == key_id)
                        .values(
                            sealed_key=None, wrapped_data_key=None, kek_id=None, destroyed_at=now
                        )
                    )
            if done:
                self._changed(key_id)
                self._record(Actor(SYSTEM_ACTOR), "key.destroy", key_id, {"from": state})
                destroyed.append(key_id)
        return destroyed

    # --- master-key rotation ---------------------------------------------------

    def rewrap_all(
        self,
        progress: Callable[[RewrapProgress], None] | None = None,
        *,
        batch_size: int = 500,
    ) -> int:
        """Rewrap every data key not yet under the current master key; returns how many.

        Only the wrapped data keys change; key material and sealed blobs do not. Each
        batch commits on its own and a row is rewritten only if it still carries the
        kek id it was read with, so the job can be killed at any point and run again
        (or twice at once): what is done stays done and is skipped.
        """
        current = self._ring.current.kek_id
        pending = (
            keystore_version.c.wrapped_data_key.is_not(None),
            keystore_version.c.kek_id != current,
        )
        with self._db.session() as s:
            total = s.execute(select(func.count()).where(*pending)).scalar_one()
        self._record(
            Actor(SYSTEM_ACTOR), "kek.rewrap.start", None, {"to": current, "pending": total}
        )
        done = 0
        if progress is not None:
            progress(RewrapProgress(0, total))
        while True:
            with self._db.session() as s:
                rows = s.execute(
                    select(
                        keystore_version.c.key_id,
                        keystore_version.c.version,
                        keystore_version.c.wrapped_data_key,
                        keystore_version.c.kek_id,
                        keystore_key.c.algorithm,
                    )
                    .join(keystore_key, keystore_key.c.id == keystore_version.c.key_id)
                    .where(*pending)
                    .order_by(keystore_version.c.key_id, keystore_version.c.version)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                changes = [
                    {
                        "k": r.key_id,
                        "v": r.version,
                        "old": r.kek_id,
                        "wrapped": envelope.rewrap(
                            self._ring,
                            r.wrapped_data_key,
                            envelope.aad(r.key_id, r.version, r.algorithm),
                        ),
                    }
                    for r in rows
                ]
                s.connection().execute(
                    _REWRAP.values(kek_id=current, wrapped_data_key=bindparam("wrapped")), changes
                )
            done += len(rows)
            if progress is not None:
                progress(RewrapProgress(min(done, total), total))
        self._record(
            Actor(SYSTEM_ACTOR), "kek.rewrap.done", None, {"to": current, "rewrapped": done}
        )
        return done

    # --- internals -------------------------------------------------------------

    def _entry(self, key_id: str, *, fresh: bool = False) -> CachedKey:
        if not fresh:
            entry = self._cache.get(key_id)
            if entry is not None:
                return entry
        ticket = self._cache.ticket(key_id)
        with self._db.session() as s:
            info = self._load(s.connection(), key_id)
        return self._cache.put(info, ticket)

    def _load(self, conn: Connection, key_id: str) -> KeyInfo:
        row = conn.execute(select(keystore_key).where(keystore_key.c.id == key_id)).one_or_none()
        if row is None:
            raise KeyNotFound(f"no key {key_id}")
        versions = conn.execute(
            select(
                keystore_version.c.version,
                keystore_version.c.created_at,
                keystore_version.c.public_key,
                keystore_version.c.fingerprint,
                keystore_version.c.kek_id,
                keystore_version.c.destroyed_at,
            )
            .where(keystore_version.c.key_id == key_id)
            .order_by(keystore_version.c.version)
        ).all()
        return _info(row, versions)

    def _secret(self, entry: CachedKey, version: int) -> PrivateKey | bytes:
        secret = entry.secrets.get(version)
        if secret is None:
            secret = self._unwrap(entry.info, version)
            entry.secrets[version] = secret
        return secret

    def _private(self, entry: CachedKey, version: int) -> PrivateKey:
        secret = self._secret(entry, version)
        assert not isinstance(secret, bytes)
        return secret

    def _unwrap(self, info: KeyInfo, version: int) -> PrivateKey | bytes:
        with self._db.session() as s:
            row = s.execute(
                select(keystore_version.c.sealed_key, keystore_version.c.wrapped_data_key).where(
                    keystore_version.c.key_id == info.id, keystore_version.c.version == version
                )
            ).one_or_none()
        if row is None or row.sealed_key is None or row.wrapped_data_key is None:
            raise KeyDestroyed(f"key {info.id} version {version} has no material")
        plain = envelope.open_sealed(
            self._ring,
            row.sealed_key,
            row.wrapped_data_key,
            envelope.aad(info.id, version, info.algorithm),
        )
        if info.algorithm is Algorithm.SM4:
            return plain
        return load_private_key(plain, sm2_backend=self._sm2)

    def _check_signing_state(self, info: KeyInfo) -> None:
        if info.state is not S.ACTIVE:
            if info.state is S.SUSPENDED:
                raise KeySuspended(f"key {info.id} is suspended")
            if info.state is S.DESTROYED:
                raise KeyDestroyed(f"key {info.id} is destroyed")
            raise KeyNotActive(f"key {info.id} is {info.state}")
        if info.activation_at is None and info.expires_at is None:
            return  # no clock read on the signing path of keys without time bounds
        now = self._clock.now()
        if info.activation_at is not None and now < info.activation_at:
            raise KeyNotActive(f"key {info.id} is not active before {info.activation_at}")
        if info.expires_at is not None and now >= info.expires_at:
            raise KeyExpired(f"key {info.id} expired at {info.expires_at}")

    def _changed(self, key_id: str) -> None:
        """Drop the key here now, and in every other worker by broadcast."""
        self._cache.invalidate(key_id)
        if self._coordination is not None:
            try:
                self._coordination.publish(CHANNEL, key_id)
            except TrustError:
                # The change is committed; other workers catch up when their TTL runs out.
                log.warning("could not broadcast the change of key %s", key_id, exc_info=True)

    def invalidate_all(self) -> None:
        self._changed(ALL_KEYS)

    def _require_admin(self, actor: Actor, action: str) -> None:
        if not actor.is_admin:
            self._deny(actor, action, None)

    def _require_manager(self, info: KeyInfo, actor: Actor, action: str) -> None:
        if not (actor.is_admin or actor.id == info.owner):
            self._deny(actor, action, info.id)

    def _deny(self, actor: Actor, action: str, key_id: str | None) -> None:
        self._record(actor, action, key_id, {}, outcome="denied")
        raise Forbidden(f"{actor.id} may not {action.removeprefix('key.')} key {key_id or ''}")

    def _record(
        self,
        actor: Actor,
        action: str,
        key_id: str | None,
        details: Mapping[str, Any],
        *,
        outcome: str = "success",
    ) -> None:
        self._audit.append(actor.id, action, target=key_id, outcome=outcome, details=details)

    @staticmethod
    def _summary(request: GenerateRequest) -> dict[str, Any]:
        return {
            "label": request.label,
            "algorithm": request.algorithm.value,
            "purpose": request.purpose.value,
        }

    # --- for backup and the checkpoint signer (same package) -------------------

    def _sign_unaudited(self, key_id: str, data: bytes) -> tuple[int, bytes]:
        """Sign for the audit log's own checkpoints: an audit record of that signature
        would be appended inside the append being checkpointed."""
        entry = self._entry(key_id)
        if entry.info.purpose is not Purpose.AUDIT:
            raise KeyPurposeMismatch(f"key {key_id} is not an audit key")
        self._check_signing_state(entry.info)
        version = entry.info.primary_version
        return version, self._private(entry, version).sign(data)

    def _verify_unaudited(self, key_id: str, data: bytes, signature: bytes) -> int:
        return self._verify(self._entry(key_id).info, data, signature, False, None, None, None)

    def _export_all(
        self, progress: Callable[[int, int], None] | None = None
    ) -> Iterable[tuple[KeyInfo, dict[int, bytes]]]:
        """Every key with the plaintext secret of each live version (backup only);
        ``progress(done, total)`` before the first key and after each."""
        with self._db.session() as s:
            ids = [k for (k,) in s.execute(select(keystore_key.c.id).order_by(keystore_key.c.id))]
        if progress is not None:
            progress(0, len(ids))
        for done, key_id in enumerate(ids, 1):
            entry = self._entry(key_id, fresh=True)
            plain = {}
            for v in entry.info.live_versions:
                secret = self._unwrap(entry.info, v.version)
                plain[v.version] = (
                    secret if isinstance(secret, bytes) else secret.private_bytes_pkcs8()
                )
            yield entry.info, plain
            if progress is not None:
                progress(done, len(ids))

    def _key_ids(self, purpose: Purpose, state: KeyState) -> list[str]:
        """Ids of the keys with this purpose in this state, oldest first (internal wiring,
        such as finding the audit key; no actor, no audit)."""
        with self._db.session() as s:
            rows = s.execute(
                select(keystore_key.c.id)
                .where(keystore_key.c.purpose == purpose.value, keystore_key.c.state == state.value)
                .order_by(keystore_key.c.created_at, keystore_key.c.id)
            )
            return [key_id for (key_id,) in rows]

    def _restorable(self, key_ids: Sequence[str]) -> bool:
        """Whether a backup of ``key_ids`` may be restored here: the store holds no key but
        audit keys (``trustctl init`` makes one) and none of those ids."""
        with self._db.session() as s:
            others = s.execute(
                select(func.count())
                .select_from(keystore_key)
                .where(keystore_key.c.purpose != Purpose.AUDIT.value)
            ).scalar_one()
            clash = s.execute(
                select(func.count()).where(keystore_key.c.id.in_(list(key_ids)))
            ).scalar_one()
        return others == 0 and clash == 0

    def _insert_restored(
        self,
        items: Sequence[tuple[KeyInfo, dict[int, bytes]]],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        keys: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        if progress is not None:
            progress(0, len(items))
        for done, (info, plain) in enumerate(items, 1):
            keys.append(_key_row(info))
            for v in info.versions:
                secret = plain.get(v.version)
                row: dict[str, Any] = {
                    "key_id": info.id,
                    "version": v.version,
                    "created_at": v.created_at,
                    "public_key": v.public_key_der,
                    "fingerprint": v.fingerprint,
                    "sealed_key": None,
                    "wrapped_data_key": None,
                    "kek_id": None,
                    "destroyed_at": v.destroyed_at,
                }
                if secret is not None:
                    sealed = envelope.seal(
                        self._ring, secret, envelope.aad(info.id, v.version, info.algorithm)
                    )
                    row.update(
                        sealed_key=sealed.sealed_key,
                        wrapped_data_key=sealed.wrapped_data_key,
                        kek_id=sealed.kek_id,
                    )
                versions.append(row)
            if progress is not None:
                progress(done, len(items))
        with self._db.session() as s:
            if keys:
                s.execute(insert(keystore_key), keys)
                s.execute(insert(keystore_version), versions)
        self.invalidate_all()


def build_keystore(
    settings: Settings,
    db: Database,
    *,
    clock: Clock,
    audit: AuditSink,
    coordination: Coordination | None = None,
    previous_keks: Iterable[KekProvider] = (),
) -> KeyStore:
    """The key store the settings describe: the configured master key wraps, earlier
    master keys (during a master-key rotation) still unwrap."""
    return KeyStore(
        db,
        KekRing(build_kek_provider(settings), previous_keks),
        clock=clock,
        audit=audit,
        coordination=coordination,
        cache_ttl=settings.key_cache_ttl_seconds,
        destruction_wait=timedelta(seconds=settings.key_destruction_wait_seconds),
        audit_mode=settings.keystore_audit_mode,
        write_behind_seconds=settings.keystore_audit_write_behind_seconds,
    )


# --- helpers ----------------------------------------------------------------------

_SECURE_DELETE = text("PRAGMA secure_delete = ON")
_REWRAP = update(keystore_version).where(
    keystore_version.c.key_id == bindparam("k"),
    keystore_version.c.version == bindparam("v"),
    keystore_version.c.kek_id == bindparam("old"),
)


def _count(result: Any) -> int:
    """Rows an UPDATE matched (the conditional updates here detect concurrent changes)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _check_request(request: GenerateRequest) -> None:
    algorithm = Algorithm(request.algorithm)
    purpose = Purpose(request.purpose)
    if not request.label or len(request.label) > 200:
        raise BadRequest("a key label is 1 to 200 characters")
    if purpose is Purpose.ENCRYPT and not algorithm.can_encrypt:
        raise KeyPurposeMismatch(f"{algorithm} keys do not encrypt")
    if purpose.signs and not algorithm.can_sign:
        raise KeyPurposeMismatch(f"{algorithm} keys do not sign")
    if request.rotation_period is not None and request.rotation_period <= timedelta(0):
        raise BadRequest("a rotation period must be positive")


def _check_reason(reason: str | None) -> None:
    if reason is not None and not (
        0 < len(reason) <= MAX_REASON and reason.isprintable() and reason.strip()
    ):
        raise BadRequest(f"a reason is 1 to {MAX_REASON} printable characters")


def _reason(reason: str | None) -> dict[str, str]:
    return {} if reason is None else {"reason": reason}


def _may_use(info: KeyInfo, actor: Actor) -> bool:
    return (
        actor.id == info.owner
        or actor.id in info.permitted_principals
        or info.id in actor.key_grants
    )


def _sm4_aad(key_id: str, version: int, aad: bytes) -> bytes:
    return _SM4_AAD_LABEL + f"{key_id}\x00{version}\x00".encode("ascii") + aad


def _info(row: Any, versions: Sequence[Any]) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        label=row.label,
        algorithm=Algorithm(row.algorithm),
        purpose=Purpose(row.purpose),
        owner=row.owner,
        permitted_principals=frozenset(json.loads(row.permitted)),
        state=KeyState(row.state),
        created_at=row.created_at,
        activation_at=row.activation_at,
        expires_at=row.expires_at,
        rotation_period=(
            timedelta(seconds=row.rotation_seconds) if row.rotation_seconds is not None else None
        ),
        rotated_at=row.rotated_at,
        compromised_at=row.compromised_at,
        destroy_after=row.destroy_after,
        destroyed_at=row.destroyed_at,
        imported=bool(row.imported),
        primary_version=row.primary_version,
        state_reason=row.state_reason,
        versions=tuple(
            KeyVersionInfo(
                version=v.version,
                created_at=v.created_at,
                public_key_der=bytes(v.public_key) if v.public_key is not None else None,
                fingerprint=v.fingerprint,
                kek_id=v.kek_id,
                destroyed_at=v.destroyed_at,
            )
            for v in versions
        ),
    )


def _key_row(info: KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "label": info.label,
        "algorithm": info.algorithm.value,
        "purpose": info.purpose.value,
        "owner": info.owner,
        "permitted": json.dumps(sorted(info.permitted_principals)),
        "state": info.state.value,
        "created_at": info.created_at,
        "activation_at": info.activation_at,
        "expires_at": info.expires_at,
        "rotation_seconds": (
            int(info.rotation_period.total_seconds()) if info.rotation_period else None
        ),
        "rotated_at": info.rotated_at,
        "compromised_at": info.compromised_at,
        "destroy_after": info.destroy_after,
        "destroyed_at": info.destroyed_at,
        "imported": info.imported,
        "primary_version": info.primary_version,
        "state_reason": info.state_reason,
    }
