"""/v1/keys over the app: create, read, sign (single and batch), verify, encrypt, decrypt,
rotate, state changes and destruction; who may do what; bad input; SM2 signatures made
over HTTP checked by the openssl command line with the PEM from /public."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_support import ApiEnv, make_env
from trust.auth import Grant, Role
from trust.keys import SignatureScheme, load_public_key

PROBLEM = "application/problem+json"


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    return make_env(tmp_path, key_destruction_wait_seconds=3600)


@pytest.fixture
def admin(env: ApiEnv) -> dict[str, str]:
    return env.headers(Grant(Role.key_admin))


@pytest.fixture
def signer(env: ApiEnv) -> dict[str, str]:
    return env.headers(Grant(Role.signer))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create(
    env: ApiEnv, admin: dict[str, str], algorithm: str = "SM2", purpose: str = "sign"
) -> dict[str, Any]:
    r = env.client.post(
        "/v1/keys",
        json={"algorithm": algorithm, "purpose": purpose, "label": f"{algorithm} test"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == code, body
    return body


def sign(env: ApiEnv, key_id: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    return env.client.post(f"/v1/keys/{key_id}/sign", json=body, headers=headers)


def verify(env: ApiEnv, key_id: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = env.client.post(f"/v1/keys/{key_id}/verify", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


# --- reading ----------------------------------------------------------------------------


def test_create_show_list_public(env: ApiEnv, admin: dict[str, str]) -> None:
    r = env.client.post(
        "/v1/keys", json={"algorithm": "SM2", "purpose": "sign", "label": "invoices"}, headers=admin
    )
    assert r.status_code == 201
    key = r.json()
    assert r.headers["location"] == f"/v1/keys/{key['id']}"
    assert key["algorithm"] == "SM2" and key["purpose"] == "sign" and key["state"] == "active"
    assert key["primary_version"] == 1 and key["label"] == "invoices"
    [version] = key["versions"]
    assert version["version"] == 1 and version["state"] == "active"
    assert version["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in r.text

    assert env.client.get(f"/v1/keys/{key['id']}", headers=admin).json() == key
    listed = env.client.get("/v1/keys", headers=admin).json()["keys"]
    assert [k["id"] for k in listed] == [key["id"]]

    r = env.client.get(f"/v1/keys/{key['id']}/public", headers=admin)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-pem-file"
    assert r.text == version["public_key_pem"]
    assert load_public_key(r.content).algorithm == "sm2"


def test_sm4_key_has_no_public_key(env: ApiEnv, admin: dict[str, str]) -> None:
    key = create(env, admin, "SM4", "encrypt")
    assert key["versions"][0]["public_key_pem"] is None
    problem(
        env.client.get(f"/v1/keys/{key['id']}/public", headers=admin), 400, "unsupported_algorithm"
    )


def test_unknown_key_and_version(env: ApiEnv, admin: dict[str, str]) -> None:
    problem(env.client.get("/v1/keys/key_000000000000000000000000", headers=admin), 404,
            "key_not_found")  # fmt: skip
    key = create(env, admin)
    problem(
        env.client.get(f"/v1/keys/{key['id']}/public?version=9", headers=admin),
        404,
        "key_not_found",
    )


# --- who may do what ----------------------------------------------------------------------


def test_refusals(env: ApiEnv, admin: dict[str, str], signer: dict[str, str]) -> None:
    key = create(env, admin)
    other = create(env, admin)
    body = {"data_b64": b64(b"hello")}
    problem(sign(env, key["id"], {}, **body), 401, "unauthenticated")
    problem(env.client.post("/v1/keys", json={}, headers={}), 401, "unauthenticated")
    # key_admin manages keys but does not use them; signer uses them but does not manage.
    problem(sign(env, key["id"], admin, **body), 403, "forbidden")
    problem(
        env.client.post(
            "/v1/keys", json={"algorithm": "SM2", "purpose": "sign", "label": "x"}, headers=signer
        ),
        403,
        "forbidden",
    )
    problem(env.client.post(f"/v1/keys/{key['id']}/rotate", headers=signer), 403, "forbidden")
    problem(env.client.get("/v1/keys", headers=signer), 403, "forbidden")
    # admin is not a key role.
    token_admin = env.headers(Grant(Role.admin))
    problem(env.client.get("/v1/keys", headers=token_admin), 403, "forbidden")

    narrowed = env.headers(Grant.narrowed(Role.signer, [key["id"]]))
    assert sign(env, key["id"], narrowed, **body).status_code == 200
    assert env.client.get(f"/v1/keys/{key['id']}", headers=narrowed).status_code == 200
    problem(sign(env, other["id"], narrowed, **body), 403, "forbidden")
    problem(env.client.get(f"/v1/keys/{other['id']}", headers=narrowed), 403, "forbidden")

    # A key_admin narrowed to one key manages that key only, and cannot create keys.
    narrowed_admin = env.headers(Grant.narrowed(Role.key_admin, [key["id"]]))
    r = env.client.post(f"/v1/keys/{key['id']}/rotate", headers=narrowed_admin)
    assert r.status_code == 200 and r.json()["primary_version"] == 2
    problem(
        env.client.post(f"/v1/keys/{other['id']}/rotate", headers=narrowed_admin), 403, "forbidden"
    )

    # A verifier verifies and reads public keys, and signs nothing.
    verifier = env.headers(Grant(Role.verifier))
    problem(sign(env, key["id"], verifier, **body), 403, "forbidden")
    assert env.client.get(f"/v1/keys/{key['id']}/public", headers=verifier).status_code == 200


# --- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        ("SM2", {"signer_id": "alice@example.gov.cn"}),
        ("SM2", {}),
        ("ECDSA-P256", {}),
        ("ECDSA-P384", {}),
        ("RSA-2048", {}),
        ("RSA-2048", {"scheme": "rsa-pss"}),
    ],
)
def test_sign_verify_round_trip(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str], algorithm: str, extra: dict
) -> None:
    key = create(env, admin, algorithm)
    data = b"document to sign"
    r = sign(env, key["id"], signer, data_b64=b64(data), **extra)
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["key_id"] == key["id"] and signed["version"] == 1
    assert signed["algorithm"] == algorithm
    signature = base64.b64decode(signed["signature_b64"])

    result = verify(
        env, key["id"], signer, data_b64=b64(data), signature_b64=signed["signature_b64"], **extra
    )
    assert result == {"valid": True, "version": 1}
    bad = verify(
        env, key["id"], signer, data_b64=b64(data + b"!"), signature_b64=signed["signature_b64"],
        **extra,
    )  # fmt: skip
    assert bad == {"valid": False, "version": None}

    # The signature also verifies outside the service, with the published public key.
    public = load_public_key(env.client.get(f"/v1/keys/{key['id']}/public", headers=signer).content)
    signer_id = extra["signer_id"].encode() if "signer_id" in extra else None
    scheme = SignatureScheme(extra["scheme"]) if "scheme" in extra else None
    public.verify(signature, data, signer_id=signer_id, scheme=scheme)


def test_sm2_signer_id_matters(env: ApiEnv, admin: dict[str, str], signer: dict[str, str]) -> None:
    key = create(env, admin)
    data = b64(b"message")
    signed = sign(env, key["id"], signer, data_b64=data, signer_id="alice").json()
    assert verify(env, key["id"], signer, data_b64=data, signature_b64=signed["signature_b64"]) == {
        "valid": False,
        "version": None,
    }


def test_digest_signing(env: ApiEnv, admin: dict[str, str], signer: dict[str, str]) -> None:
    key = create(env, admin, "ECDSA-P256")
    data = b"hashed elsewhere"
    digest = b64(hashlib.sha256(data).digest())
    signed = sign(env, key["id"], signer, digest_b64=digest).json()
    assert verify(
        env, key["id"], signer, data_b64=b64(data), signature_b64=signed["signature_b64"]
    )["valid"]
    assert verify(env, key["id"], signer, digest_b64=digest, signature_b64=signed["signature_b64"])[
        "valid"
    ]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_sm2_signature_verifies_with_openssl(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str], tmp_path: Path
) -> None:
    key = create(env, admin)
    data = "电子证照 e-licence 2026".encode()
    signer_id = "1234567812345678abc"
    signed = sign(env, key["id"], signer, data_b64=b64(data), signer_id=signer_id).json()
    pem = env.client.get(f"/v1/keys/{key['id']}/public", headers=signer).content
    (tmp_path / "pub.pem").write_bytes(pem)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(base64.b64decode(signed["signature_b64"]))

    def openssl_verify(distid: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
             "-digest", "sm3", "-pkeyopt", f"distid:{distid}", "-in", "data", "-sigfile", "sig"],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip

    done = openssl_verify(signer_id)
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done
    assert openssl_verify("1234567812345678").returncode != 0


def test_sign_batch(env: ApiEnv, admin: dict[str, str], signer: dict[str, str]) -> None:
    key = create(env, admin)
    messages = [f"document {i}".encode() for i in range(25)]
    items: list[dict[str, str]] = [{"data_b64": b64(m)} for m in messages]
    items[3]["signer_id"] = "alice"
    r = env.client.post(f"/v1/keys/{key['id']}/sign:batch", json={"items": items}, headers=signer)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["key_id"] == key["id"] and answer["algorithm"] == "SM2"
    assert len(answer["items"]) == len(items)
    for item, signed in zip(items, answer["items"], strict=True):
        assert signed["version"] == 1
        assert verify(env, key["id"], signer, **item, signature_b64=signed["signature_b64"])[
            "valid"
        ]
    problem(
        env.client.post(f"/v1/keys/{key['id']}/sign:batch", json={"items": []}, headers=signer),
        422,
        "validation_failed",
    )
    other = create(env, admin)
    narrowed = env.headers(Grant.narrowed(Role.signer, [key["id"]]))
    problem(
        env.client.post(
            f"/v1/keys/{other['id']}/sign:batch", json={"items": items[:1]}, headers=narrowed
        ),
        403,
        "forbidden",
    )


# --- encryption -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SM4", "SM2", "RSA-2048"])
def test_encrypt_decrypt(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str], algorithm: str
) -> None:
    key = create(env, admin, algorithm, "encrypt")
    url = f"/v1/keys/{key['id']}"
    plaintext = b64(b"a data key, 16 B")
    aad = {"aad_b64": b64(b"record 7")} if algorithm == "SM4" else {}
    r = env.client.post(f"{url}/encrypt", json={"plaintext_b64": plaintext, **aad}, headers=signer)
    assert r.status_code == 200, r.text
    ciphertext = r.json()["ciphertext_b64"]
    r = env.client.post(
        f"{url}/decrypt", json={"ciphertext_b64": ciphertext, **aad}, headers=signer
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"key_id": key["id"], "plaintext_b64": plaintext}
    tampered = base64.b64decode(ciphertext)
    tampered = tampered[:-1] + bytes([tampered[-1] ^ 1])
    problem(
        env.client.post(f"{url}/decrypt", json={"ciphertext_b64": b64(tampered)}, headers=signer),
        400,
        "decryption_failed",
    )
    # A signing key does not decrypt.
    signing = create(env, admin)
    problem(
        env.client.post(
            f"/v1/keys/{signing['id']}/decrypt", json={"ciphertext_b64": ciphertext}, headers=signer
        ),
        400,
        "key_purpose_mismatch",
    )


# --- lifecycle ------------------------------------------------------------------------------


def test_rotation_keeps_old_signatures_valid(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    data = b64(b"signed before rotation")
    old = sign(env, key["id"], signer, data_b64=data).json()
    r = env.client.post(f"/v1/keys/{key['id']}/rotate", headers=admin)
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["primary_version"] == 2
    assert [v["state"] for v in rotated["versions"]] == ["retired", "active"]
    new = sign(env, key["id"], signer, data_b64=data).json()
    assert new["version"] == 2
    assert verify(env, key["id"], signer, data_b64=data, signature_b64=old["signature_b64"]) == {
        "valid": True,
        "version": 1,
    }
    r = env.client.get(f"/v1/keys/{key['id']}/public?version=1", headers=signer)
    assert r.text == rotated["versions"][0]["public_key_pem"]
    assert r.headers["x-key-version"] == "1"


def test_states_refuse_use_with_the_keystore_codes(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    url = f"/v1/keys/{key['id']}"
    data = b64(b"x")
    signature = sign(env, key["id"], signer, data_b64=data).json()["signature_b64"]

    def state(target: str, **extra: Any) -> httpx.Response:
        return env.client.post(f"{url}/state", json={"state": target, **extra}, headers=admin)

    assert state("suspended").json()["state"] == "suspended"
    problem(sign(env, key["id"], signer, data_b64=data), 409, "key_suspended")
    problem(state("suspended"), 409, "key_state_unchanged")
    assert state("active").json()["state"] == "active"
    assert sign(env, key["id"], signer, data_b64=data).status_code == 200

    # Destruction needs a deactivated (or compromised) key first.
    problem(env.client.delete(url, headers=admin), 409, "key_destruction_needs_deactivation")
    assert state("deactivated").json()["state"] == "deactivated"
    problem(sign(env, key["id"], signer, data_b64=data), 409, "key_not_active")
    assert verify(env, key["id"], signer, data_b64=data, signature_b64=signature)["valid"]
    problem(state("active"), 409, "key_already_deactivated")

    r = env.client.delete(url, headers=admin)
    assert r.status_code == 202
    assert r.json()["destroy_after"] is not None and r.json()["state"] == "deactivated"
    env.clock.advance(3601)
    store = env.app.state.services.keystore()
    assert store.destroy_due() == [key["id"]]
    shown = env.client.get(url, headers=admin).json()
    assert shown["state"] == "destroyed"
    assert [v["state"] for v in shown["versions"]] == ["destroyed"]
    problem(sign(env, key["id"], signer, data_b64=data), 409, "key_destroyed")
    problem(
        env.client.post(
            f"{url}/verify", json={"data_b64": data, "signature_b64": signature}, headers=signer
        ),
        409,
        "key_destroyed",
    )
    problem(state("active"), 409, "key_already_destroyed")
    # The public key outlives the material.
    assert env.client.get(f"{url}/public", headers=signer).status_code == 200


def test_compromise_records_when(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    url = f"/v1/keys/{key['id']}"
    r = env.client.post(
        f"{url}/state",
        json={"state": "compromised", "compromised_at": "2025-12-31T23:00:00+00:00"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "compromised"
    assert r.json()["compromised_at"].startswith("2025-12-31T23:00:00")
    problem(sign(env, key["id"], signer, data_b64=b64(b"x")), 409, "key_not_active")
    problem(
        env.client.post(
            f"{url}/state",
            json={"state": "suspended", "compromised_at": "2025-12-31T23:00:00Z"},
            headers=admin,
        ),
        422,
        "validation_failed",
    )


def test_state_change_reason_is_stored_and_audited(env: ApiEnv, admin: dict[str, str]) -> None:
    from trust.audit import AuditLog

    key = create(env, admin)
    url = f"/v1/keys/{key['id']}"
    assert key["state_reason"] is None
    r = env.client.post(
        f"{url}/state", json={"state": "suspended", "reason": "holder on leave"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["state_reason"] == "holder on leave"
    assert env.client.get(url, headers=admin).json()["state_reason"] == "holder on leave"
    last = AuditLog(env.db, env.clock).tail(1)[0]
    assert (last.action, last.target) == ("key.state.suspended", key["id"])
    assert last.details == {"from": "active", "reason": "holder on leave"}
    # The reason belongs to the latest change: a change without one clears it.
    r = env.client.post(f"{url}/state", json={"state": "active"}, headers=admin)
    assert r.json()["state_reason"] is None
    r = env.client.post(
        f"{url}/state",
        json={"state": "compromised", "reason": "token stolen"},
        headers=admin,
    )
    assert r.json()["state_reason"] == "token stolen"
    assert AuditLog(env.db, env.clock).tail(1)[0].details["reason"] == "token stolen"
    r = env.client.post(
        f"{url}/state", json={"state": "destroyed", "reason": "end of life"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["state_reason"] == "end of life"
    assert r.json()["destroy_after"] is not None


def test_bad_reasons_are_refused_and_change_nothing(env: ApiEnv, admin: dict[str, str]) -> None:
    key = create(env, admin)
    url = f"/v1/keys/{key['id']}"
    for reason, status, code in [
        ("", 422, "validation_failed"),
        ("x" * 501, 422, "validation_failed"),
        ("line\nbreak", 400, "bad_request"),
        ("   ", 400, "bad_request"),
    ]:
        r = env.client.post(
            f"{url}/state", json={"state": "suspended", "reason": reason}, headers=admin
        )
        problem(r, status, code)
    after = env.client.get(url, headers=admin).json()
    assert (after["state"], after["state_reason"]) == ("active", None)


def test_verify_with_a_missing_version_is_key_not_found(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    signature = sign(env, key["id"], signer, data_b64=b64(b"m")).json()["signature_b64"]
    body = {"data_b64": b64(b"m"), "signature_b64": signature, "version": 7}
    r = env.client.post(f"/v1/keys/{key['id']}/verify", json=body, headers=signer)
    problem(r, 404, "key_not_found")
    body["version"] = 1
    assert verify(env, key["id"], signer, **{k: v for k, v in body.items()}) == {
        "valid": True,
        "version": 1,
    }


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"data_b64": "%%%not-base64%%%"},
        {"data_b64": "QUJD="},  # bad padding
        {"data_b64": "QUJD\nRA=="},
        {"data_b64": 12},
        {"digest_b64": "!!"},
        {"data_b64": "QUJD", "unknown": 1},
        {},
        {"data_b64": "QUJD", "digest_b64": "QUJD"},
        {"digest_b64": "QUJD", "signer_id": "alice"},
        {"data_b64": "QUJD", "signer_id": ""},
        {"data_b64": "QUJD", "scheme": "md5"},
    ],
)
def test_bad_sign_bodies_are_422(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str], body: dict[str, Any]
) -> None:
    key = create(env, admin)
    r = sign(env, key["id"], signer, **body)
    found = problem(r, 422, "validation_failed")
    assert "%%%not-base64%%%" not in r.text  # input is never echoed
    assert found["errors"]


def test_malformed_json_and_wrong_content_type(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    url = f"/v1/keys/{key['id']}/sign"
    headers = {**signer, "Content-Type": "application/json"}
    problem(
        env.client.post(url, content=b'{"data_b64": ', headers=headers), 400, "bad_request_json"
    )
    problem(
        env.client.post(url, content=b"data", headers={**signer, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    problem(
        env.client.post(
            "/v1/keys",
            json={"algorithm": "SM2", "purpose": "sign", "label": "x", "owner": "me"},
            headers=admin,
        ),
        422,
        "validation_failed",
    )
    problem(
        env.client.post(
            "/v1/keys", json={"algorithm": "SM4", "purpose": "sign", "label": "x"}, headers=admin
        ),
        400,
        "key_purpose_mismatch",
    )
    problem(
        env.client.post(
            "/v1/keys", json={"algorithm": "DSA", "purpose": "sign", "label": "x"}, headers=admin
        ),
        422,
        "validation_failed",
    )
    problem(env.client.get("/v1/keys/bad%20id", headers=admin), 422, "validation_failed")


def test_wrong_signer_id_for_ecdsa_is_a_client_error(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin, "ECDSA-P256")
    r = sign(env, key["id"], signer, data_b64=b64(b"x"), signer_id="alice")
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == PROBLEM


def test_sign_is_audited_with_the_token(
    env: ApiEnv, admin: dict[str, str], signer: dict[str, str]
) -> None:
    key = create(env, admin)
    whoami = env.client.get("/v1/whoami", headers=signer).json()
    sign(env, key["id"], signer, data_b64=b64(b"audited"))
    from trust.audit import AuditLog

    records = AuditLog(env.db, env.clock).tail(5)
    signed = [e for e in records if e.action == "key.sign"]
    assert signed and signed[-1].actor == f"token:{whoami['token_id']}"
    assert signed[-1].target == key["id"]


def test_server_start_builds_the_keystore(tmp_path: Path) -> None:
    """Without a master key the app refuses to start, naming what to do."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from trust import migrations
    from trust.db import Database
    from trust.errors import ConfigurationError
    from trust.settings import Settings

    settings = Settings(var_dir=tmp_path / "var")
    db = Database(settings.effective_database_url)
    migrations.upgrade(db)
    with (
        pytest.raises(ConfigurationError, match="trustctl init"),
        TestClient(create_app(settings, database=db)),
    ):
        pass
    env = make_env(tmp_path / "ok")
    with TestClient(env.app) as client:
        assert client.get("/healthz").status_code == 200


def test_openapi_examples_are_real() -> None:
    """The documented SM2 example signature verifies with the documented public key."""
    from api.routers import keys

    public = load_public_key(keys._EXAMPLE_PEM.encode())
    data = base64.b64decode(keys._EXAMPLE_DATA)
    public.verify(base64.b64decode(keys._EXAMPLE_SIGNATURE), data)
