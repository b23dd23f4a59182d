"""Idempotency-Key on POST: the work runs once and the first answer is replayed, across workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select

from api.idempotency import answers
from tests.api_support import ApiEnv, make_env
from tests.conftest import need_service
from tests.ofd_support import make_ofd, sample, service_seal_env
from trust.audit.schema import audit_record
from trust.auth import Grant, Role
from trust.auth.schema import auth_token
from trust.db import Database

BODY = {"label": "batch", "grants": [{"role": "verifier"}]}


@pytest.fixture
def env(tmp_path) -> ApiEnv:  # type: ignore[no-untyped-def]
    return make_env(tmp_path)


def count(db: Database, table, *where) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_same_key_replays_first_answer_and_works_once(env: ApiEnv) -> None:
    h = {**env.admin(), "Idempotency-Key": "k-1"}
    before = count(env.db, auth_token)
    first = env.client.post("/v1/tokens", headers=h, json=BODY)
    second = env.client.post("/v1/tokens", headers={**h, "X-Request-ID": "again"}, json=BODY)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content and second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["x-request-id"] == "again"
    assert count(env.db, auth_token) == before + 1
    assert count(env.db, audit_record, audit_record.c.action == "token.create") == before + 1


def test_same_key_other_request_conflicts(env: ApiEnv) -> None:
    h = {**env.admin(), "Idempotency-Key": "k-2"}
    assert env.client.post("/v1/tokens", headers=h, json=BODY).status_code == 201
    other = env.client.post("/v1/tokens", headers=h, json={**BODY, "label": "other"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    assert other.json()["reason"] == "fingerprint_mismatch"


def test_key_is_scoped_to_the_principal(env: ApiEnv) -> None:
    a = env.client.post("/v1/tokens", headers={**env.admin(), "Idempotency-Key": "k"}, json=BODY)
    b = env.client.post("/v1/tokens", headers={**env.admin(), "Idempotency-Key": "k"}, json=BODY)
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


def test_refusals_do_not_claim_the_key(env: ApiEnv) -> None:
    denied = env.headers(Grant(Role.auditor))
    assert (
        env.client.post(
            "/v1/tokens", headers={**denied, "Idempotency-Key": "k3"}, json=BODY
        ).status_code
        == 403
    )
    bad = env.client.post(
        "/v1/tokens", headers={**env.admin(), "Idempotency-Key": "a b"}, json=BODY
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"


def test_stored_answers_keep_no_secret_in_the_clear(env: ApiEnv) -> None:
    seen: list[bytes] = []
    coordination = env.app.state.services.coordination
    real_complete = coordination.complete

    def spy(claim, response):  # type: ignore[no-untyped-def]
        seen.append(response.body)
        return real_complete(claim, response)

    coordination.complete = spy
    r = env.client.post("/v1/tokens", headers={**env.admin(), "Idempotency-Key": "k4"}, json=BODY)
    secret = r.json()["token"].split("_", 2)[2]
    assert seen and all(secret.encode() not in body for body in seen)


# --- across worker processes ----------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ.get("TRUST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        need_service("redis", str(exc))
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> Iterator[tuple[str, str, Database]]:
    """``trustctl serve --workers 2`` on PostgreSQL and Redis: (base url, admin token, db)."""
    trustctl = str(Path(sys.executable).with_name("trustctl"))
    env = {
        **os.environ,
        "TRUST_VAR_DIR": str(tmp_path / "var"),
        "TRUST_DATABASE_URL": postgres_url,
        "TRUST_REDIS_URL": redis_url,
        "TRUST_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}:",
        "TRUST_LOG_LEVEL": "WARNING",
    }
    subprocess.run([trustctl, "init"], env=env, check=True, capture_output=True, timeout=180)
    token = (tmp_path / "var" / "admin.token").read_text().strip()
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [trustctl, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    db = Database(postgres_url)
    try:
        deadline = time.monotonic() + 120  # generous: a loaded 2-core CI box
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield base, token, db
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_concurrent_same_key_across_workers_does_the_work_once(
    served: tuple[str, str, Database],
) -> None:
    base, token, db = served
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"multi-{uuid.uuid4()}"}
    body = json.dumps(BODY).encode()

    def post(_: int) -> httpx.Response:
        # A fresh connection each, so that the kernel spreads them over both workers.
        with httpx.Client(timeout=30) as client:
            return client.post(
                f"{base}/v1/tokens",
                headers={**headers, "content-type": "application/json"},
                content=body,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(16)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    created = responses[0].json()["id"]
    # The admin from init plus exactly one new token, and one audit record of its creation.
    assert count(db, auth_token) == 2
    assert count(db, audit_record, audit_record.c.action == "token.create") == 2
    assert (
        count(
            db,
            audit_record,
            audit_record.c.action == "token.create",
            audit_record.c.target == created,
        )
        == 1
    )


def test_large_answers_go_to_the_database_and_replay_byte_for_byte(tmp_path: Path) -> None:
    """An answer over idempotency_max_inline_bytes (here a stamped OFD) is stored sealed in
    the database, the coordination entry holds only its reference; a retry gets the
    same document and the stamp is made once."""
    env = make_env(tmp_path, idempotency_max_inline_bytes=1024)
    seals = service_seal_env(env.app.state.services, env.clock)
    signer = seals.add_signer("clerk")
    esid = seals.active_seal(signer)
    grant = Grant(Role.signer, "seal", frozenset({esid}))
    headers = {**env.headers(grant), "Idempotency-Key": "stamp-1"}
    document = make_ofd(1, 4096)

    def stamp(x: str = "20", data: bytes = document) -> httpx.Response:
        form = {"seal_id": esid, "signer": signer.signer_id, "x": x, "y": "30"}
        return env.client.post(
            "/v1/documents/stamp", headers=headers, data=form, files={"file": ("a", data)}
        )

    first, second = stamp(), stamp()
    assert first.status_code == second.status_code == 200, first.text
    assert len(first.content) > 1024 and first.content == second.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == "application/ofd"
    assert "x-trust-answer-ref" not in second.headers
    # The fingerprint covers the form fields and the uploaded file (multipart).
    for other in (stamp(x="21"), stamp(data=make_ofd(2, 4096))):
        assert other.status_code == 409 and other.json()["reason"] == "fingerprint_mismatch"
    stamps = audit_record.c.action == "document.stamp"
    assert count(env.db, audit_record, stamps) == 1
    with env.db.session() as s:
        (stored,) = s.execute(select(answers.c.body)).scalars().all()
    assert document[:64] not in stored and first.content[-64:] not in stored  # sealed

    # Small answers stay in the coordination store.
    r = env.client.post("/v1/tokens", headers={**env.admin(), "Idempotency-Key": "t"}, json=BODY)
    assert r.status_code == 201 and count(env.db, answers) == 1

    # Expired rows go as new ones are stored; a replay whose row is gone is a 409.
    env.clock.advance(2 * env.settings.idempotency_ttl_seconds)
    headers["Idempotency-Key"] = "stamp-2"
    assert stamp().status_code == 200 and count(env.db, answers) == 1
    with env.db.session() as s:
        s.execute(delete(answers))
    gone = stamp()
    assert gone.status_code == 409 and gone.json()["reason"] == "answer_expired", gone.text


def test_verify_answers_over_the_cap_replay_too(tmp_path: Path) -> None:
    env = make_env(tmp_path, idempotency_max_inline_bytes=1024)
    files = {"file": ("a.ofd", sample("v4signed.ofd"))}
    h = {"Idempotency-Key": "v-1"}
    first = env.client.post("/v1/documents/verify", headers=h, files=files)
    second = env.client.post("/v1/documents/verify", headers=h, files=files)
    assert first.status_code == second.status_code == 200
    assert len(first.content) > 1024 and first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true" and count(env.db, answers) == 1
