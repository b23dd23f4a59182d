"""The TSA over HTTP (ASGI client) with the units ``trustctl init`` makes: RFC 3161 from the
openssl CLI, the JSON routes and their roles, unit listing and rotation, clock health."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from asn1crypto import pem, x509
from fastapi.routing import APIRoute, iter_route_contexts

from api.deps import Services
from api.lean import _plan
from tests.api_support import ApiEnv, make_env
from tests.ca_support import openssl_output
from tests.tsa_support import provision_defaults, request, root_of, verify_with_pure_backend
from timestamp import parse_response, verify_token
from timestamp.registry import UnitRecord
from trust.auth import Grant, Role
from trust.cms.algorithms import digest

DATA = b"a document stamped over HTTP\n"
QUERY = {"Content-Type": "application/timestamp-query"}


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    return make_env(tmp_path)


@pytest.fixture
def units(env: ApiEnv) -> dict[str, UnitRecord]:
    return {r.name: r for r in provision_defaults(services(env))}


def services(env: ApiEnv) -> Services:
    built = env.app.state.services
    assert isinstance(built, Services)
    return built


def post_query(env: ApiEnv, body: bytes, path: str = "/tsa") -> bytes:
    r = env.client.post(path, content=body, headers=QUERY)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/timestamp-reply"
    return r.content


def granted(reply: bytes) -> bytes:
    parsed = parse_response(reply)
    assert parsed.status == "granted", parsed
    assert parsed.token is not None
    return parsed.token


@pytest.mark.openssl_cli
@pytest.mark.parametrize("digest_flag", ["-sm3", "-sha256"])
@pytest.mark.parametrize("path", ["/tsa", "/tsa/sm2", "/tsa/ecdsa"])
def test_openssl_query_posted_and_reply_printed(
    env: ApiEnv, units: dict[str, UnitRecord], tmp_path: Path, path: str, digest_flag: str
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(DATA)
    query = tmp_path / "q.tsq"
    code, out = openssl_output("ts", "-query", "-data", data, digest_flag, "-cert", "-out", query)
    assert code == 0, out
    reply = tmp_path / "r.tsr"
    reply.write_bytes(post_query(env, query.read_bytes(), path))
    code, out = openssl_output("ts", "-reply", "-in", reply, "-text")
    assert code == 0, out
    assert "Status: Granted." in out and f"Hash Algorithm: {digest_flag[1:]}" in out
    unit = units["ecdsa" if path.endswith("ecdsa") else "sm2"]
    assert f"Policy OID: {unit.policy}" in out
    result = verify_token(granted(reply.read_bytes()), data=DATA)
    assert result.ok, result.problems
    assert result.signer_certificate is not None
    assert result.signer_certificate.dump() == unit.certificate


@pytest.mark.openssl_cli
@pytest.mark.parametrize("digest_flag", ["-sm3", "-sha256"])
def test_openssl_verifies_the_ecdsa_unit_up_to_the_default_root(
    env: ApiEnv, units: dict[str, UnitRecord], tmp_path: Path, digest_flag: str
) -> None:
    unit = units["ecdsa"]
    data = tmp_path / "data.bin"
    data.write_bytes(DATA)
    query = tmp_path / "q.tsq"
    assert (
        openssl_output("ts", "-query", "-data", data, digest_flag, "-cert", "-out", query)[0] == 0
    )
    reply = tmp_path / "r.tsr"
    reply.write_bytes(post_query(env, query.read_bytes(), "/tsa/ecdsa"))
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", unit.chain[-1]))
    untrusted = [unit.certificate, *unit.chain[:-1]]
    (tmp_path / "tsa.pem").write_bytes(b"".join(pem.armor("CERTIFICATE", c) for c in untrusted))
    code, out = openssl_output(
        "ts", "-verify", "-data", data, "-in", reply,
        "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "tsa.pem",
    )  # fmt: skip
    assert code == 0 and "Verification: OK" in out, out


def test_sm2_token_over_http_verifies_with_the_pure_backend(
    env: ApiEnv, units: dict[str, UnitRecord]
) -> None:
    token = granted(post_query(env, request(DATA, "sm3")))
    verify_with_pure_backend(token, x509.Certificate.load(units["sm2"].certificate))
    result = verify_token(token, data=DATA)
    assert result.ok and result.policy == units["sm2"].policy


def test_transport_errors(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    r = env.client.post("/tsa", content=request(DATA), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = env.client.post("/tsa", json={"a": 1})
    assert r.status_code == 415
    r = env.client.post("/tsa/nope", content=request(DATA), headers=QUERY)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    # A malformed body is the TSA's verdict, in RFC 3161 form, never a 500.
    for body in (b"", b"\x30\x03\x02\x01", b"junk" * 100, request(DATA)[:-3]):
        assert parse_response(post_query(env, body)).failure_info == {"bad_data_format"}


def test_lean_dispatch_serves_rfc3161_as_the_declared_route(
    env: ApiEnv, units: dict[str, UnitRecord]
) -> None:
    # api/lean.py runs the declared routes; OpenAPI describes them.
    for path in ("/tsa", "/tsa/{unit}"):
        context = next(c for c in iter_route_contexts(env.app.routes) if c.path_format == path)
        assert isinstance(context.original_route, APIRoute) and _plan(context) is not None
    assert {"/tsa", "/tsa/{unit}"} <= set(env.client.get("/openapi.json").json()["paths"])
    # A unit name the declared route's pattern refuses: its 422, not a 404 from the TSA.
    for bad in ("x" * 65, "a%20b"):
        r = env.client.post(f"/tsa/{bad}", content=request(DATA), headers=QUERY)
        assert r.status_code == 422 and r.json()["code"] == "validation_failed"

    # Metrics and Idempotency-Key scopes name the declared route. The registry is per
    # process (other tests in this worker count too): compare before and after.
    def unmatched() -> list[str]:
        text = env.client.get("/metrics").text
        return [line for line in text.splitlines() if 'method="POST",route="<unmatched>"' in line]

    before = unmatched()
    post_query(env, request(DATA, "sm3"))
    post_query(env, request(DATA, "sm3"), "/tsa/ecdsa")
    metrics = env.client.get("/metrics").text
    assert 'route="/tsa",status="200"' in metrics
    assert 'route="/tsa/{unit}",status="200"' in metrics
    assert unmatched() == before
    again = {**QUERY, "Idempotency-Key": "tsa-1"}
    a = env.client.post("/tsa", content=request(DATA, "sm3"), headers=again)
    b = env.client.post("/tsa", content=request(DATA, "sm3"), headers=again)
    assert a.status_code == b.status_code == 200 and a.content == b.content
    assert b.headers.get("Idempotent-Replayed") == "true"


def test_failure_infos_over_http(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    cases = {
        "bad_alg": request(DATA, hash_oid="1.3.14.3.2.26", hashed=bytes(20)),
        "bad_data_format": request(DATA, hashed=bytes(31)),
        "unaccepted_policy": request(DATA, policy="1.2.3.4"),
        "unaccepted_extensions": request(
            DATA, extensions=[{"extn_id": "1.2.3.4", "extn_value": b"\x05\x00"}]
        ),
    }
    for failure, body in cases.items():
        assert parse_response(post_query(env, body)).failure_info == {failure}, failure


def test_rate_limited_per_client(tmp_path: Path) -> None:
    env = make_env(tmp_path, rate_limit_requests=2)
    provision_defaults(services(env))
    for _ in range(2):
        post_query(env, request(DATA))
    r = env.client.post("/tsa", content=request(DATA), headers=QUERY)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"


def test_issue_json_and_look_up(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    signer = env.headers(Grant(Role.signer))
    imprint = digest("sm3", DATA)
    body = {"digest_b64": base64.b64encode(imprint).decode(), "hash_algorithm": "sm3"}
    r = env.client.post("/v1/timestamps", json=body, headers=signer)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["unit"] == "sm2" and issued["policy"] == units["sm2"].policy
    token = base64.b64decode(issued["token_b64"])
    result = verify_token(token, digest=imprint)
    assert result.ok and result.serial_hex == issued["serial_hex"]

    r = env.client.post("/v1/timestamps", json={**body, "unit": "ecdsa"}, headers=signer)
    assert r.status_code == 200 and r.json()["unit"] == "ecdsa"

    for role in (Role.auditor, Role.verifier):
        r = env.client.get(
            f"/v1/timestamps/{issued['serial_hex'].upper()}", headers=env.headers(Grant(role))
        )
        assert r.status_code == 200, r.text
        record = r.json()
        assert record["serial_hex"] == issued["serial_hex"]
        assert base64.b64decode(record["token_b64"]) == token
        assert base64.b64decode(record["digest_b64"]) == imprint
    assert (
        env.client.get(f"/v1/timestamps/{issued['serial_hex']}", headers=signer).status_code == 403
    )
    r = env.client.get("/v1/timestamps/abc", headers=env.headers(Grant(Role.auditor)))
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"hash_algorithm": "md5"}, 400, "unsupported_algorithm"),
        ({"digest_b64": base64.b64encode(bytes(20)).decode()}, 400, "bad_request_length"),
        ({"unit": "nope"}, 404, "not_found"),
        ({"digest_b64": "not base64!"}, 422, "validation_failed"),
        ({"extra": 1}, 422, "validation_failed"),
    ],
)
def test_issue_json_refusals(
    env: ApiEnv, units: dict[str, UnitRecord], change: dict[str, object], status: int, code: str
) -> None:
    body = {"digest_b64": base64.b64encode(bytes(32)).decode(), "hash_algorithm": "sha256"}
    r = env.client.post(
        "/v1/timestamps", json={**body, **change}, headers=env.headers(Grant(Role.signer))
    )
    assert r.status_code == status and r.json()["code"] == code, r.text


def test_units_listed_publicly_with_chains(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    r = env.client.get("/v1/tsa/units")
    assert r.status_code == 200, r.text
    listed = {u["name"]: u for u in r.json()["units"]}
    assert r.json()["default_unit"] == "sm2"
    assert {n: u["algorithm"] for n, u in listed.items()} == {"sm2": "sm2", "ecdsa": "ecdsa-p256"}
    for name, unit in listed.items():
        chain = [der for _, _, der in pem.unarmor(unit["chain_pem"].encode(), multiple=True)]
        assert chain == [units[name].certificate, *units[name].chain]
        assert len(chain) == 3 and unit["state"] == "active" and unit["generation"] == 1
        assert root_of(units[name]).self_signed == "maybe"


def test_rotation_keeps_old_tokens_verifying(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    before = granted(post_query(env, request(DATA, "sm3")))
    path = "/v1/tsa/units/sm2/rotate"
    assert env.client.post(path, headers=env.headers(Grant(Role.signer))).status_code == 403
    r = env.client.post(path, headers=env.headers(Grant(Role.key_admin)))
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 2
    r = env.client.post(path, headers=env.admin())
    assert r.status_code == 200 and r.json()["generation"] == 3
    assert env.client.post("/v1/tsa/units/nope/rotate", headers=env.admin()).status_code == 404

    after = granted(post_query(env, request(DATA, "sm3")))
    old, new = verify_token(before, data=DATA), verify_token(after, data=DATA)
    assert old.ok and new.ok
    assert old.signer_certificate is not None and new.signer_certificate is not None
    assert old.signer_certificate.dump() == units["sm2"].certificate
    assert new.signer_certificate.dump() != units["sm2"].certificate
    verify_with_pure_backend(before, old.signer_certificate)
    listed = env.client.get("/v1/tsa/units", params={"include_retired": "true"}).json()["units"]
    states = [(u["name"], u["generation"], u["state"]) for u in listed]
    assert states == [
        ("ecdsa", 1, "active"),
        ("sm2", 1, "retired"),
        ("sm2", 2, "retired"),
        ("sm2", 3, "active"),
    ]
    current = next(u for u in listed if u["state"] == "active" and u["name"] == "sm2")
    assert current["certificate_serial_hex"] == format(new.signer_certificate.serial_number, "x")


def test_keys_route_refuses_to_rotate_a_unit_key(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    r = env.client.post(
        f"/v1/keys/{units['sm2'].key_id}/rotate", headers=env.headers(Grant(Role.key_admin))
    )
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "key_bound_to_tsa_unit" and problem["unit"] == "sm2"
    assert "trustctl tsa rotate sm2" in problem["detail"]
    assert "/v1/tsa/units/sm2/rotate" in problem["detail"]
    granted(post_query(env, request(DATA, "sm3")))  # the unit still answers


def test_unsynchronised_clock(env: ApiEnv, units: dict[str, UnitRecord]) -> None:
    flag = env.settings.effective_tsa_clock_flag_file
    assert env.client.get("/readyz").json()["checks"]["tsa_clock"] == "ok"
    flag.touch()
    r = env.client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["tsa_clock"] == "unsynchronised"
    assert parse_response(post_query(env, request(DATA))).failure_info == {"time_not_available"}
    body = {"digest_b64": base64.b64encode(bytes(32)).decode(), "hash_algorithm": "sha256"}
    r = env.client.post("/v1/timestamps", json=body, headers=env.headers(Grant(Role.signer)))
    assert r.status_code == 503 and r.json()["code"] == "service_unavailable"
    flag.unlink()
    assert env.client.get("/readyz").status_code == 200
    granted(post_query(env, request(DATA)))


def test_no_units_yet(env: ApiEnv) -> None:
    """Before trustctl init made the units, POST /tsa is a clear 404, not a 500."""
    r = env.client.post("/tsa", content=request(DATA), headers=QUERY)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert env.client.get("/v1/tsa/units").json()["units"] == []
