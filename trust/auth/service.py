"""API tokens: issue, list, revoke, authenticate; the first admin token.

Authentication is one indexed read by the token's public id and a constant-time
compare of SM3 hashes. Checks run in this order so that a caller without the
secret learns nothing about a token id: format, hash, then revocation and expiry.

``authenticate_cached`` answers from the tokens verified in the last ``cache_ttl``
seconds (default 1 s) without the database: it still hashes the presented token and
compares it in constant time with the stored hash, and checks expiry. A revocation
made in this process drops the entry at once; one made elsewhere (another worker,
``trustctl tokens revoke``) takes effect here within ``cache_ttl``, with or without
a coordination backend, because entries are never refreshed, only re-read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Connection, CursorResult, Row

from trust.auth import tokens
from trust.auth.roles import Grant, Principal, Role
from trust.auth.schema import auth_grant, auth_token
from trust.clock import Clock
from trust.db import Database
from trust.errors import BadRequest, NotFound, TokenExpired, TokenRevoked, Unauthenticated

# Writing last_used_at on every request would turn each read into a write;
# minute resolution is what an operator needs to spot unused tokens.
LAST_USED_RESOLUTION = timedelta(minutes=1)

MAX_LABEL_LEN = 200
_MAX_VERIFIED = 10_000  # cached tokens before expired entries are swept
MAX_GRANTS = 20

# Compared against when the token id is unknown, so that the reply takes as long.
_DUMMY_HASH = tokens.token_hash("trst_000000000000_" + "A" * 43)


class AuditSink(Protocol):
    """The part of the audit log (``trust.audit.AuditLog``) this service writes to."""

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: Any = "success",
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class TokenInfo:
    """A token record, without its secret."""

    id: str
    label: str
    grants: tuple[Grant, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is the secret, shown to its creator once and never again."""

    info: TokenInfo
    token: str


@dataclass(frozen=True)
class _Verified:
    """A token that passed ``authenticate``, remembered until ``until`` (monotonic)."""

    until: float
    secret_hash: bytes
    principal: Principal
    expires_at: datetime | None
    last_used_at: datetime


class AuthService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditSink | None = None,
        *,
        cache_ttl: float = 1.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._cache_ttl = cache_ttl
        self._verified: dict[str, _Verified] = {}
        self._verified_lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- management ---------------------------------------------------------

    def create_token(
        self,
        grants: Sequence[Grant],
        *,
        actor: str,
        label: str = "",
        expires_at: datetime | None = None,
        request_id: str | None = None,
    ) -> IssuedToken:
        if not grants or len(grants) > MAX_GRANTS:
            raise BadRequest(f"a token needs 1 to {MAX_GRANTS} grants")
        if len(label) > MAX_LABEL_LEN:
            raise BadRequest(f"label longer than {MAX_LABEL_LEN} characters")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise BadRequest("expires_at is not in the future")
        token_id = tokens.new_token_id()
        secret = tokens.new_token(token_id)
        with self._db.session() as s:
            s.execute(
                auth_token.insert().values(
                    id=token_id,
                    label=label,
                    secret_hash=tokens.token_hash(secret),
                    created_at=now,
                    created_by=actor,
                    expires_at=expires_at,
                )
            )
            s.execute(
                auth_grant.insert(),
                [
                    {
                        "token_id": token_id,
                        "role": g.role.value,
                        "resource_type": g.resource_type,
                        "resource_ids": sorted(g.resource_ids) if g.resource_ids else None,
                    }
                    for g in grants
                ],
            )
        info = TokenInfo(token_id, label, tuple(grants), now, actor, expires_at, None, None)
        self._record(
            actor,
            "token.create",
            token_id,
            request_id,
            {
                "label": label,
                "grants": [g.to_json() for g in grants],
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        return IssuedToken(info, secret)

    def list_tokens(self) -> list[TokenInfo]:
        with self._db.session() as s:
            conn = s.connection()
            rows = conn.execute(select(auth_token).order_by(auth_token.c.created_at)).all()
            grants = _grants_by_token(conn, [r.id for r in rows])
        return [_info(r, grants.get(r.id, ())) for r in rows]

    def get_token(self, token_id: str) -> TokenInfo:
        with self._db.session() as s:
            conn = s.connection()
            row = conn.execute(select(auth_token).where(auth_token.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"no token {token_id!r}")
            return _info(row, _grants_by_token(conn, [token_id]).get(token_id, ()))

    def revoke(self, token_id: str, *, actor: str, request_id: str | None = None) -> TokenInfo:
        """Revoke a token; revoking a revoked token changes nothing and is not an error."""
        now = self._clock.now()
        with self._db.session() as s:
            result = s.execute(
                update(auth_token)
                .where(auth_token.c.id == token_id, auth_token.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            changed = cast(CursorResult[Any], result).rowcount
        self._forget(token_id)
        info = self.get_token(token_id)
        if changed:
            self._record(actor, "token.revoke", token_id, request_id, {"label": info.label})
        return info

    # --- authentication -------------------------------------------------------

    def authenticate_cached(self, token: str) -> Principal | None:
        """The principal of a token verified within ``cache_ttl``, checked against its
        stored hash and expiry without the database; None when ``authenticate`` must
        decide (not cached, entry too old, expired, or ``last_used_at`` due)."""
        parsed = tokens.parse(token)
        if parsed is None:
            return None
        entry = self._verified.get(parsed.token_id)  # a dict read is atomic: no lock here
        if entry is None or entry.until <= time.monotonic():
            return None
        if not tokens.hash_matches(token, entry.secret_hash):
            return None  # authenticate answers, so a wrong secret costs the same as before
        now = self._clock.now()
        if entry.expires_at is not None and entry.expires_at <= now:
            return None
        if now - entry.last_used_at >= LAST_USED_RESOLUTION:
            return None
        return entry.principal

    def authenticate(self, token: str) -> Principal:
        parsed = tokens.parse(token)
        if parsed is None:
            raise Unauthenticated("malformed bearer token")
        with self._db.session() as s:
            conn = s.connection()
            row = conn.execute(select(auth_token).where(auth_token.c.id == parsed.token_id)).first()
            if row is None:
                tokens.hash_matches(token, _DUMMY_HASH)
                raise Unauthenticated("unknown token")
            if not tokens.hash_matches(token, row.secret_hash):
                raise Unauthenticated("unknown token")
            now = self._clock.now()
            if row.revoked_at is not None:
                raise TokenRevoked(f"token {row.id} was revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise TokenExpired(f"token {row.id} expired")
            grants = _grants_by_token(conn, [row.id]).get(row.id, ())
            last_used = row.last_used_at
            if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
                conn.execute(
                    update(auth_token).where(auth_token.c.id == row.id).values(last_used_at=now)
                )
                last_used = now
        principal = Principal(row.id, row.label, tuple(grants))
        if self._cache_ttl > 0:
            entry = _Verified(
                time.monotonic() + self._cache_ttl,
                bytes(row.secret_hash),
                principal,
                row.expires_at,
                last_used,
            )
            with self._verified_lock:
                self._verified[row.id] = entry
                if len(self._verified) > _MAX_VERIFIED:
                    self._prune()
        return principal

    def _forget(self, token_id: str) -> None:
        with self._verified_lock:
            self._verified.pop(token_id, None)

    def _prune(self) -> None:
        """Drop expired entries (under the lock); the cache holds at most one per live token."""
        now = time.monotonic()
        for token_id in [k for k, v in self._verified.items() if v.until <= now]:
            del self._verified[token_id]

    # --- the first admin --------------------------------------------------------

    def has_active_admin(self) -> bool:
        now = self._clock.now()
        query = select(
            exists()
            .where(auth_grant.c.token_id == auth_token.c.id)
            .where(
                and_(
                    auth_grant.c.role == Role.admin.value,
                    auth_grant.c.resource_ids.is_(None),
                    auth_token.c.revoked_at.is_(None),
                    or_(auth_token.c.expires_at.is_(None), auth_token.c.expires_at > now),
                )
            )
        )
        with self._db.session() as s:
            return bool(s.execute(query).scalar())

    def ensure_first_admin(self, path: Path, *, actor: str = "trustctl init") -> bool:
        """Create an admin token into ``path`` (mode 0600) unless an active admin exists.

        True when a token was created. The file is written beside and renamed into
        place, so a reader never sees a partial token.
        """
        if self.has_active_admin():
            return False
        issued = self.create_token([Grant(Role.admin)], actor=actor, label="first admin")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (issued.token + "\n").encode("ascii"))
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)  # the umask may have narrowed it; never widened
        os.replace(tmp, path)
        return True

    # --- internals ----------------------------------------------------------------

    def _record(
        self,
        actor: str,
        action: str,
        target: str,
        request_id: str | None,
        details: Mapping[str, Any],
    ) -> None:
        if self._audit is not None:
            self._audit.append(actor, action, target=target, request_id=request_id, details=details)


def _grants_by_token(conn: Connection, token_ids: Iterable[str]) -> dict[str, tuple[Grant, ...]]:
    ids = list(token_ids)
    out: dict[str, list[Grant]] = {}
    if not ids:
        return {}
    rows = conn.execute(
        select(auth_grant).where(auth_grant.c.token_id.in_(ids)).order_by(auth_grant.c.id)
    )
    for r in rows:
        rids = frozenset(r.resource_ids) if r.resource_ids is not None else None
        out.setdefault(r.token_id, []).append(Grant(Role(r.role), r.resource_type, rids))
    return {k: tuple(v) for k, v in out.items()}


def _info(row: Row[Any], grants: tuple[Grant, ...]) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        label=row.label,
        grants=grants,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
