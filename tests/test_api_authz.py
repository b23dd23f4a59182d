"""The role x endpoint matrix, generated from the app's routes: a route without a rule fails.

For every route and method: no token, an expired and a revoked token are 401; each
role the rule does not name is 403; each role it names gets past authorisation;
narrowed grants are refused on other resources. Public routes are declared here,
explicitly, so making a route public is a visible change to this file.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter

from api.security import Resource, Rule, api_routes, public_if, require, rules_of
from tests.api_support import ApiEnv, make_env
from trust.auth import Grant, Role

# (method, path) of routes that need no token at all.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/algorithms"),
    # What relying parties fetch: CA certificates (AIA caIssuers), CRLs, OCSP.
    ("GET", "/v1/cas/{ca_id}/certificate"),
    ("GET", "/v1/cas/{ca_id}/chain"),
    ("GET", "/crl/{ca_id}.crl"),
    ("POST", "/ocsp"),
    ("GET", "/ocsp/{request_b64}"),
    # RFC 3161 time-stamping (as public TSAs are) and the TSA units' certificate chains.
    ("POST", "/tsa"),
    ("POST", "/tsa/{unit}"),
    ("GET", "/v1/tsa/units"),
    # The seal status check (查验): anyone holding a stamped document may ask.
    ("GET", "/v1/seals/{esid}/status"),
}


def _demo_router() -> APIRouter:
    """Routes that name resources, as domain routers will (keys by path, by body field)."""
    router = APIRouter(prefix="/v1/demo")

    @router.post(
        "/keys/{key_id}/sign",
        dependencies=[require(Role.signer, resource=Resource("key", path_param="key_id"))],
    )
    def sign(key_id: str) -> dict[str, str]:
        return {"key_id": key_id}

    @router.post(
        "/sign",
        dependencies=[
            require(Role.signer, Role.seal_officer, resource=Resource("key", body_field="key_id"))
        ],
    )
    def sign_body(body: dict[str, Any]) -> dict[str, str]:
        return {"ok": "yes"}

    @router.post("/verify", dependencies=[public_if("public_verify", Role.verifier)])
    def verify(body: dict[str, Any]) -> dict[str, str]:
        return {"ok": "yes"}

    return router


DEMO_PUBLIC_WHEN_SET = {("POST", "/v1/demo/verify")}
# Verification (api/routers/verify.py): public while public_verify, else the verifier role.
VERIFY_PUBLIC_WHEN_SET = {
    ("POST", "/v1/verify/signature"),
    ("POST", "/v1/verify/cms"),
    ("POST", "/v1/verify/certificate"),
    ("POST", "/v1/verify/timestamp"),
    ("POST", "/v1/verify/signature:batch"),
    ("POST", "/v1/verify/cms:batch"),
    ("POST", "/v1/certificates:parse"),
    # Seal verification (api/routers/seals.py).
    ("POST", "/v1/verify/seal"),
    ("POST", "/v1/verify/seal-signature"),
    # Document verification (api/routers/documents.py).
    ("POST", "/v1/documents/verify"),
}
# Multipart routes naming their resource in a form field: (method, path) -> field.
FORM_RESOURCES = {
    ("POST", "/v1/documents/stamp"): "seal_id",
    ("POST", "/v1/documents/sign"): "signer",
}


@pytest.fixture(params=[True, False], ids=["public_verify", "private_verify"])
def env(request, tmp_path) -> ApiEnv:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, public_verify=request.param)
    env.app.include_router(_demo_router())
    return env


def _url(path: str, resource_id: str) -> str:
    return re.sub(r"\{[^}]+\}", resource_id, path)


def _call(
    env: ApiEnv, method: str, path: str, headers: dict[str, str], resource_id: str = "K1"
) -> Any:
    form_field = FORM_RESOURCES.get((method, path))
    if form_field is not None:
        return env.client.request(
            method,
            path,
            headers=headers,
            data={form_field: resource_id},
            files={"file": ("empty", b"")},
        )
    return env.client.request(
        method, _url(path, resource_id), headers=headers, json={"key_id": resource_id}
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _matrix(env: ApiEnv) -> list[tuple[str, str, Rule]]:
    entries = []
    for route in api_routes(env.app):
        rules = rules_of(route)
        assert len(rules) == 1, (
            f"{route.path_format} declares {len(rules)} authorisation rules, need 1"
        )
        for method in sorted(route.methods or ()):
            entries.append((method, route.path_format, rules[0]))
    return entries


def test_every_route_has_one_rule_and_public_routes_are_declared(env: ApiEnv) -> None:
    matrix = _matrix(env)
    assert len(matrix) >= 8
    public = {(m, p) for m, p, rule in matrix if rule.public or rule.operations}
    assert public == PUBLIC
    conditional = {(m, p) for m, p, rule in matrix if rule.public_setting}
    assert conditional == DEMO_PUBLIC_WHEN_SET | VERIFY_PUBLIC_WHEN_SET


def test_role_matrix(env: ApiEnv) -> None:
    role_tokens = {role: env.token(Grant(role)) for role in Role}
    expired = env.token(
        *(Grant(r) for r in Role), expires_at=env.clock.now() + timedelta(seconds=1)
    )
    revoked_issued = env.auth.create_token([Grant(r) for r in Role], actor="test")
    env.auth.revoke(revoked_issued.info.id, actor="test")
    env.clock.advance(2)
    checked = 0
    for method, path, rule in _matrix(env):
        where = f"{method} {path}"
        if (method, path) in PUBLIC:
            assert _call(env, method, path, {}).status_code not in (401, 403), where
            continue
        public_now = rule.is_public(env.settings)
        r = _call(env, method, path, {})
        if public_now:
            assert r.status_code not in (401, 403), where
        else:
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated", where
            assert r.headers["www-authenticate"].startswith("Bearer"), where
        r = _call(env, method, path, _bearer(expired))
        assert r.status_code == 401 and r.json()["code"] == "token_expired", where
        r = _call(env, method, path, _bearer(revoked_issued.token))
        assert r.status_code == 401 and r.json()["code"] == "token_revoked", where
        for role, token in role_tokens.items():
            r = _call(env, method, path, _bearer(token))
            if role in rule.roles or public_now:
                assert r.status_code not in (401, 403), (where, role, r.text)
            else:
                assert r.status_code == 403 and r.json()["code"] == "forbidden", (where, role)
            checked += 1
    assert checked >= 7 * 8


def test_narrowed_grants_hold_only_on_their_resources(env: ApiEnv) -> None:
    narrowed_routes = [(m, p, rule) for m, p, rule in _matrix(env) if rule.resource is not None]
    assert narrowed_routes
    for method, path, rule in narrowed_routes:
        assert rule.resource is not None
        for role in rule.roles:
            token = env.token(Grant(role, rule.resource.type, frozenset({"K1", "K2"})))
            where = f"{method} {path} as {role}"
            assert _call(env, method, path, _bearer(token), "K1").status_code not in (401, 403), (
                where
            )
            r = _call(env, method, path, _bearer(token), "K3")
            assert r.status_code == 403 and r.json()["code"] == "forbidden", where
            other_type = env.token(
                Grant(role, "seal" if rule.resource.type != "seal" else "key", frozenset({"K1"}))
            )
            assert _call(env, method, path, _bearer(other_type), "K1").status_code == 403, where


def test_narrowed_grants_do_not_reach_routes_without_resources(env: ApiEnv) -> None:
    narrowed_admin = env.token(Grant(Role.admin, "key", frozenset({"K1"})))
    r = env.client.get("/v1/tokens", headers=_bearer(narrowed_admin))
    assert r.status_code == 403


def test_malformed_authorization_headers(env: ApiEnv) -> None:
    for value in ("Basic dXNlcjpwdw==", "Bearer", "Bearer trst_xyz", "token abc"):
        r = env.client.get("/v1/whoami", headers={"Authorization": value})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated", value
    assert (
        "trst_xyz"
        not in env.client.get("/v1/whoami", headers={"Authorization": "Bearer trst_xyz"}).text
    )
