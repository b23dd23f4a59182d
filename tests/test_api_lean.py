"""The lean dispatcher (api/lean.py) answers exactly as FastAPI's generic path would.

Each request is sent twice: once through the lean path, once with a dependency
override set (which sends every request to FastAPI), and the answers are compared
field by field, request ids and signatures aside.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.lean import _plan
from tests.api_support import ApiEnv, make_env
from trust.auth import Grant, Role

_VOLATILE = {"request_id", "signature_b64", "id", "created_at", "token", "token_id", "expires_at"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    yield make_env(tmp_path)


def _lean_routes(env: ApiEnv) -> set[str]:
    return {
        f"{m} {c.path_format}"
        for c in iter_route_contexts(env.app.routes)
        if isinstance(c.original_route, APIRoute) and _plan(c) is not None
        for m in c.methods
    }


def test_hot_routes_are_lean(env: ApiEnv) -> None:
    lean = _lean_routes(env)
    for route in (
        "POST /v1/keys/{key_id}/sign",
        "POST /v1/keys/{key_id}/sign:batch",
        "POST /v1/signers/{signer_id}/cms",
        "POST /tsa",
        "POST /v1/timestamps",
        "GET /healthz",
    ):
        assert route in lean, route
    # Multipart uploads keep FastAPI's form parsing.
    assert "POST /v1/documents/stamp" not in lean


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _answer(r: httpx.Response) -> tuple[int, str, Any, str | None, str | None]:
    kind = r.headers.get("content-type", "")
    body = _strip(r.json()) if "json" in kind else r.content
    return r.status_code, kind, body, r.headers.get("location"), r.headers.get("www-authenticate")


def _both(env: ApiEnv, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
    lean = _answer(env.client.request(method, path, **kwargs))
    env.app.dependency_overrides[_both] = _both  # any override: FastAPI's path for everything
    try:
        generic = _answer(env.client.request(method, path, **kwargs))
    finally:
        env.app.dependency_overrides.clear()
    return lean, generic


def test_same_answers_as_fastapi(env: ApiEnv) -> None:
    admin = env.headers(Grant(Role.key_admin), Grant(Role.seal_officer))
    created = env.client.post("/v1/keys", json={"algorithm": "SM2", "purpose": "sign", "label": "l"}, headers=admin)
    assert created.status_code == 201
    key_id = created.json()["id"]
    signer = env.headers(Grant(Role.signer, "key", key_id))
    other = env.headers(Grant(Role.signer, "key", "key_000000000000000000000000"))
    data = base64.b64encode(b"data").decode()
    sign = f"/v1/keys/{key_id}/sign"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", sign, {"json": {"data_b64": data}, "headers": signer}),
        ("POST", sign, {"json": {"data_b64": data}, "headers": other}),  # 403
        ("POST", sign, {"json": {"data_b64": data}}),  # 401
        ("POST", sign, {"json": {"data_b64": data}, "headers": {"Authorization": "Bearer x"}}),
        (
            "POST",
            sign,
            {"content": b"{not json", "headers": {**signer, "content-type": "application/json"}},
        ),
        ("POST", sign, {"content": b"{not json"}),  # no token, no content type: 401 first
        ("POST", sign, {"content": b"data", "headers": {**signer, "content-type": "text/plain"}}),
        ("POST", sign, {"json": {"data_b64": 5}, "headers": signer}),  # 422 with locations
        ("POST", sign, {"json": {}, "headers": signer}),
        ("POST", sign, {"headers": signer}),  # no body at all
        (
            "POST",
            "/v1/keys/key_000000000000000000000000/sign",
            {"json": {"data_b64": data}, "headers": admin},
        ),
        ("POST", "/v1/keys/bad id/sign", {"json": {"data_b64": data}, "headers": admin}),
        ("GET", f"/v1/keys/{key_id}", {"headers": admin}),
        ("GET", "/v1/keys", {"headers": admin}),
        ("GET", "/v1/seals?limit=0", {"headers": admin}),  # query validation
        ("GET", "/v1/seals?limit=2", {"headers": admin}),
        ("PUT", sign, {"headers": signer}),  # 405
        ("GET", "/healthz", {}),
        (
            "POST",
            "/tsa",
            {
                "content": b"\x30\x03\x02\x01\x01",
                "headers": {"content-type": "application/timestamp-query"},
            },
        ),
        ("POST", "/tsa", {"content": b"x", "headers": {"content-type": "text/plain"}}),
    ]
    for method, path, kwargs in cases:
        lean, generic = _both(env, method, path, **kwargs)
        assert lean == generic, (method, path, lean, generic)


def test_created_status_and_location_come_from_the_endpoint(env: ApiEnv) -> None:
    admin = env.headers(Grant(Role.key_admin))
    r = env.client.post("/v1/keys", json={"algorithm": "SM2", "purpose": "sign", "label": "l"}, headers=admin)
    assert r.status_code == 201
    assert r.headers["location"].endswith(r.json()["id"])
