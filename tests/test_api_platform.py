"""The HTTP platform: request ids, problem+json, body limit, rate limit, operations endpoints,
access log, start-up migration check, OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import public
from tests.api_support import ApiEnv, make_env
from trust.auth import Grant, Role
from trust.db import Database
from trust.errors import MigrationRequired
from trust.settings import Settings

PROBLEM = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id", "instance"}


@pytest.fixture
def env(tmp_path) -> ApiEnv:  # type: ignore[no-untyped-def]
    return make_env(tmp_path)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["code"] == code and body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# --- request id ----------------------------------------------------------------


def test_request_id_generated_and_echoed(env: ApiEnv) -> None:
    generated = env.client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert (
        env.client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    # Not echoed when it could inject into logs or headers.
    insane = env.client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert insane.headers["x-request-id"] != "a b\tc" + "x" * 200
    assert_problem(env.client.get("/nowhere", headers={"X-Request-ID": "r-1"}), 404, "not_found")


# --- problem documents -----------------------------------------------------------


def test_bad_input_is_problem_json(env: ApiEnv) -> None:
    h = env.admin()
    c = env.client
    assert_problem(c.get("/no/such/route"), 404, "not_found")
    not_allowed = c.put("/v1/tokens", headers=h)
    assert_problem(not_allowed, 405, "method_not_allowed")
    assert "allow" in not_allowed.headers
    malformed = {**h, "content-type": "application/json"}
    assert_problem(
        c.post("/v1/tokens", headers=malformed, content=b'{"grants": ['), 400, "bad_request_json"
    )
    assert_problem(
        c.post("/v1/tokens", headers=malformed, content=b"\xff\xfe"), 400, "bad_request_json"
    )
    text = {**h, "content-type": "text/plain"}
    assert_problem(c.post("/v1/tokens", headers=text, content=b"{}"), 415, "unsupported_media_type")
    r = assert_problem(
        c.post("/v1/tokens", headers=h, json={"grants": [{"role": "signer"}], "secret": "s3cr3t"}),
        422,
        "validation_failed",
    )
    assert r["errors"][0]["loc"] == ["body", "secret"]
    assert "s3cr3t" not in json.dumps(r)  # validation errors never echo input
    assert_problem(
        c.post("/v1/tokens", headers=h, json={"grants": [{"role": "nobody"}]}),
        422,
        "validation_failed",
    )
    assert_problem(c.post("/v1/tokens", headers=h, json=[1, 2]), 422, "validation_failed")
    assert_problem(
        c.post("/v1/tokens", headers={**h, "content-length": "x"}, content=b"{}"),
        400,
        "bad_request",
    )


def test_unexpected_error_is_opaque_500(env: ApiEnv, caplog: pytest.LogCaptureFixture) -> None:
    router = APIRouter()

    @router.get("/boom", dependencies=[public()])
    def boom() -> None:
        raise RuntimeError("db password is hunter2")

    env.app.include_router(router)
    with caplog.at_level(logging.ERROR, logger="trust.api"):
        body = assert_problem(env.client.get("/boom"), 500, "internal_error")
    assert "hunter2" not in json.dumps(body)
    assert any(body["request_id"] in r.getMessage() and r.exc_info for r in caplog.records)


# --- body limit ------------------------------------------------------------------


def _asgi_post(
    app: Any, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, str], bytes]:
    """POST ``chunks`` straight into the ASGI app (no Content-Length unless given)."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_body_limit_with_and_without_content_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, max_body_bytes=4096)
    h = env.admin()
    r = env.client.post("/v1/tokens", headers=h, content=b"x" * 5000)
    assert_problem(r, 413, "payload_too_large")
    auth = [(b"authorization", h["Authorization"].encode()), (b"content-type", b"application/json")]
    status, headers, body = _asgi_post(env.app, "/v1/tokens", [b" " * 3000, b" " * 3000], auth)
    assert status == 413 and headers["content-type"] == PROBLEM
    assert json.loads(body)["code"] == "payload_too_large"
    # Under the limit, chunked bodies reach the route whole.
    doc = json.dumps({"grants": [{"role": "verifier"}]}).encode()
    status, _, body = _asgi_post(env.app, "/v1/tokens", [doc[:10], doc[10:]], auth)
    assert status == 201, body


# --- rate limit -------------------------------------------------------------------


def test_rate_limit_per_token_and_ip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, rate_limit_requests=3, rate_limit_window_seconds=60)
    h = env.headers(Grant(Role.auditor))
    for _ in range(3):
        assert env.client.get("/v1/whoami", headers=h).status_code == 200
    limited = env.client.get("/v1/whoami", headers=h)
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    # Another token has its own allowance; probes are never throttled.
    assert env.client.get("/v1/whoami", headers=env.headers(Grant(Role.auditor))).status_code == 200
    for _ in range(5):
        assert env.client.get("/healthz").status_code == 200
    # Without a token the client IP is the key; failed authentications count too.
    for _ in range(3):
        assert (
            env.client.get("/v1/whoami", headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
    assert_problem(env.client.get("/v1/whoami"), 429, "rate_limited")
    env.clock.advance(60)
    assert env.client.get("/v1/whoami", headers=h).status_code == 200


# --- operations --------------------------------------------------------------------


def test_readyz_and_healthz(env: ApiEnv) -> None:
    assert env.client.get("/healthz").json() == {"status": "ok"}
    r = env.client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "tsa_clock": "ok"}


def test_readyz_503_when_database_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gone = Database("postgresql://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    app = create_app(Settings(var_dir=tmp_path), database=gone)
    body = assert_problem(TestClient(app).get("/readyz"), 503, "service_unavailable")
    assert body["failed"] == ["database"]
    assert body["checks"]["database"] == "storage_unavailable"


def test_readyz_checks_redis_when_configured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, redis_url="redis://127.0.0.1:1/0")
    body = assert_problem(env.client.get("/readyz"), 503, "service_unavailable")
    assert body["failed"] == ["redis"]


def test_metrics_count_routes_by_template(env: ApiEnv) -> None:
    h = env.admin()
    env.client.get("/v1/tokens/0123456789ab", headers=h)
    env.client.get("/v1/whoami", headers=h)
    text = env.client.get("/metrics").text
    assert (
        'trust_http_requests_total{method="GET",route="/v1/tokens/{token_id}",status="404"}' in text
    )
    assert (
        'trust_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/whoami",status="200"}'
        in text
    )
    assert "trust_crypto_operations" in text


def test_refuses_to_start_on_unapplied_migration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(var_dir=tmp_path)
    app = create_app(settings)
    with pytest.raises(MigrationRequired), TestClient(app):
        pass
    assert "trustctl init" in caplog.text


def test_starts_on_current_schema(env: ApiEnv) -> None:
    with TestClient(env.app) as client:
        assert client.get("/healthz").status_code == 200


# --- access log -------------------------------------------------------------------


def test_access_log_one_json_line_per_request(
    env: ApiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    token = env.token(Grant(Role.admin))
    with caplog.at_level(logging.INFO, logger="trust.access"):
        env.client.get(
            "/v1/tokens/0123456789ab",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "rid-7"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "trust.access"]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["request_id"] == "rid-7"
    assert record["method"] == "GET" and record["route"] == "/v1/tokens/{token_id}"
    assert record["status"] == 404 and record["duration_ms"] >= 0
    assert record["client"] == "testclient"
    assert record["principal"] == token.split("_")[1]
    assert {
        "time",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "client",
        "principal",
    } <= record.keys()
    assert token not in caplog.text and token.split("_", 2)[2] not in caplog.text


# --- OpenAPI ---------------------------------------------------------------------------


def test_openapi_documents_examples_and_problems(env: ApiEnv) -> None:
    doc = env.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]

    def has_example(node: Any) -> bool:
        if isinstance(node, dict):
            if "$ref" in node:
                return has_example(schemas[node["$ref"].rsplit("/", 1)[1]])
            if "example" in node or "examples" in node:
                return True
            return any(has_example(v) for v in node.values())
        if isinstance(node, list):  # anyOf / oneOf alternatives, e.g. an optional body
            return any(has_example(v) for v in node)
        return False

    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            ok = [v for k, v in op["responses"].items() if k.startswith("2")]
            assert ok and all(has_example(r) for r in ok), f"{where}: no response example"
            if "requestBody" in op:
                assert has_example(op["requestBody"]), f"{where}: no request example"
            assert PROBLEM in op["responses"]["500"]["content"], where
            for status, response in op["responses"].items():
                if status >= "400":
                    assert list(response["content"]) == [PROBLEM], (where, status)
            if op.get("security"):
                assert {"401", "403", "429"} <= op["responses"].keys(), where
