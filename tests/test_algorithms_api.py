"""GET /v1/algorithms, and the catalogue behind it: every entry is real and usable."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from fastapi.dependencies.models import Dependant

from api.deps import get_settings
from api.security import Guard, api_routes
from tests.api_support import make_env
from trust import algorithms, oids, sm4
from trust.keys import KeyAlgorithm, PrivateKey, generate
from trust.sm2.select import available_backends, get_backend
from trust.sm3 import hmac_sm3, sm3


@cache
def key(algorithm: KeyAlgorithm) -> PrivateKey:
    return generate(algorithm)


def test_catalogue_reports_the_backend() -> None:
    backend = get_backend("auto")
    found = algorithms.catalogue(backend, ["pure"])
    assert found.sm2_backend == backend.name
    assert found.sm2_backends_available == ("pure",)
    assert found.key_algorithms == tuple(KeyAlgorithm)


def test_every_key_algorithm_can_sign_with_some_listed_algorithm() -> None:
    covered = {k for s in algorithms.SIGNATURE_ALGORITHMS for k in s.key_algorithms}
    assert covered == set(KeyAlgorithm)


@pytest.mark.parametrize(
    ("entry", "algorithm"),
    [(s, k) for s in algorithms.SIGNATURE_ALGORITHMS for k in s.key_algorithms],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_listed_signature_algorithms_work(
    entry: algorithms.SignatureAlgorithm, algorithm: KeyAlgorithm
) -> None:
    k = key(algorithm)
    k.public_key().verify(k.sign(b"m", scheme=entry.scheme), b"m", scheme=entry.scheme)
    # asn1crypto (with trust.oids) derives the same hash from the OID; PSS keeps it in
    # its parameters instead.
    if entry.oid != oids.RSASSA_PSS:
        assert algos.SignedDigestAlgorithm({"algorithm": entry.oid}).hash_algo == entry.hash


@pytest.mark.parametrize("entry", algorithms.ENCRYPTION_ALGORITHMS, ids=lambda e: e.name)
def test_listed_encryption_algorithms_work(entry: algorithms.EncryptionAlgorithm) -> None:
    k = key(entry.key_algorithms[0])
    assert k.decrypt(k.public_key().encrypt(b"secret")) == b"secret"
    assert cms.KeyEncryptionAlgorithmId(entry.oid).dotted == entry.oid


@pytest.mark.parametrize("entry", algorithms.HASH_ALGORITHMS, ids=lambda e: e.name)
def test_listed_hashes_are_named_by_asn1crypto(entry: algorithms.HashAlgorithm) -> None:
    assert algos.DigestAlgorithmId(entry.oid).native == entry.name
    if entry.name == "sm3":
        assert len(sm3(b"")) == entry.digest_size


def test_listed_mac() -> None:
    (entry,) = algorithms.MAC_ALGORITHMS
    assert entry.oid == oids.HMAC_SM3
    assert len(hmac_sm3(b"k", b"m")) == entry.digest_size


@pytest.mark.parametrize("entry", algorithms.CIPHER_ALGORITHMS, ids=lambda e: e.name)
def test_listed_ciphers_work(entry: algorithms.CipherAlgorithm) -> None:
    k, iv = bytes(entry.key_size), bytes(entry.iv_size)
    block = bytes(16)
    mode = entry.name.removeprefix("sm4-")
    if mode == "gcm":
        assert sm4.gcm_decrypt(k, iv, sm4.gcm_encrypt(k, iv, block)) == block
    elif mode == "cbc":
        assert sm4.cbc_decrypt(k, iv, sm4.cbc_encrypt(k, iv, block)) == block
    elif mode == "ctr":
        assert sm4.ctr_crypt(k, iv, sm4.ctr_crypt(k, iv, block)) == block
    else:
        assert sm4.ecb_decrypt(k, sm4.ecb_encrypt(k, block)) == block
    if entry.oid is not None:
        assert algos.EncryptionAlgorithmId(entry.oid).native == entry.name.replace("-", "_")


# --- HTTP ---------------------------------------------------------------------------


def test_get_algorithms(tmp_path: Path) -> None:
    env = make_env(tmp_path, sm2_backend="pure")
    response = env.client.get("/v1/algorithms")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sm2_backend"] == "pure"
    assert body["sm2_backends_available"] == available_backends()
    assert body["key_algorithms"] == [a.value for a in KeyAlgorithm]
    names = {s["name"]: s for s in body["signature_algorithms"]}
    assert names["sm2-with-sm3"] == {
        "name": "sm2-with-sm3",
        "oid": oids.SM3_WITH_SM2,
        "key_algorithms": ["sm2"],
        "hash": "sm3",
        "scheme": None,
    }
    assert names["rsassa-pss"]["scheme"] == "rsa-pss"
    assert {h["name"] for h in body["hash_algorithms"]} == {"sm3", "sha256", "sha384"}
    assert {c["name"] for c in body["cipher_algorithms"]} >= {"sm4-gcm", "sm4-cbc"}


def test_algorithms_is_public_and_documented(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert env.client.get("/v1/algorithms").status_code == 200
    schema = env.client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/algorithms"]["get"]
    assert "200" in operation["responses"]
    model = schema["components"]["schemas"]["AlgorithmsResponse"]
    assert model["examples"][0]["sm2_backend"]


def test_unknown_backend_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    # Settings only admit known names; model_copy skips validation to stand for an
    # engine that cannot load on this host.
    bad = env.settings.model_copy(update={"sm2_backend": "no-such-engine"})
    env.app.dependency_overrides[get_settings] = lambda: bad
    response = env.client.get("/v1/algorithms")
    assert response.status_code == 503
    assert response.json()["code"] == "crypto_backend_unavailable"


def test_algorithms_route_runs_one_guard(tmp_path: Path) -> None:
    """One guard instance, not two equal ones: each runs the rate limiter."""
    env = make_env(tmp_path)
    (route,) = [r for r in api_routes(env.app) if r.path_format == "/v1/algorithms"]
    guards: list[Guard] = []

    def walk(dependant: Dependant) -> None:
        if isinstance(dependant.call, Guard):
            guards.append(dependant.call)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    assert len(guards) == 1
    assert guards[0].rule.public
