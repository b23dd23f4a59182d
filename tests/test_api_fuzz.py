"""Fuzzing the API from its own OpenAPI document: bad input is a 4xx problem, never a 500.

Schemathesis generates valid and invalid requests (types, unknown fields,
missing members, bad path parameters) for every documented operation, in
process; a Hypothesis strategy adds raw bodies that no schema describes
(malformed JSON, wrong content types, binary junk, bad base64) on every route
that takes a body. Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.security import api_routes
from tests.api_support import ApiEnv, make_env
from trust.auth import Grant, Role

PROBLEM = "application/problem+json"
# OCSP and time-stamp requests are DER bodies: generate them as raw bytes.
schemathesis.serializer.alias("application/ocsp-request", "application/octet-stream")
schemathesis.serializer.alias("application/timestamp-query", "application/octet-stream")
EXAMPLES = 30
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> ApiEnv:
    path: Path = tmp_path_factory.mktemp("fuzz")
    return make_env(path, rate_limit_requests=1_000_000)


@pytest.fixture(scope="module")
def admin(env: ApiEnv) -> str:
    return f"Bearer {env.token(*(Grant(r) for r in Role))}"


def assert_not_a_server_error(status: int, content_type: str, body: Any, what: str) -> None:
    assert status < 500, (what, status, body)
    if status >= 400:
        assert content_type == PROBLEM, (what, status, content_type)
        assert isinstance(body, dict) and body.get("code"), (what, body)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schema_driven_requests_never_500(env: ApiEnv, admin: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", env.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        if (
            mode is GenerationMode.NEGATIVE
            and not list(operation.iter_parameters())
            and not any(b.media_type.endswith("json") for b in operation.body)
        ):
            continue  # nothing to get wrong (binary bodies get junk in test_raw_bodies_never_500)

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            kwargs.pop("cookies", None)
            if isinstance(kwargs.get("data"), (bytes, str)):
                kwargs["content"] = kwargs.pop("data")
            # Multipart parts must be bytes or text: httpx fails inside the app's receive()
            # on an int (schemathesis gives integer form fields as ints), a false 500.
            kwargs["files"] = [
                (name, (filename, value if isinstance(value, (bytes, str)) else str(value), *rest))
                for name, (filename, value, *rest) in kwargs.get("files") or []
            ] or None
            kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": admin}
            # The app's own client: schemathesis' ASGI call starts a new one per case.
            response = env.client.request(**kwargs)
            content_type = response.headers.get("content-type", "")
            body = response.json() if content_type == PROBLEM else None
            assert_not_a_server_error(response.status_code, content_type, body, operation.label)

        check()


JUNK_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"{",
            b"[1,",
            b'{"grants": [',
            b"null",
            b"\xff\xfe\x00",
            b'"x"',
            b"1e99999",
            b'{"grants": [{"role": "signer", "resource_ids": ["K1"]}], "label": 5}',
            b'{"data": "%%%not-base64%%%"}',
            b'{"data": "QUJD="}',
            b"[" * 5000 + b"]" * 5000,
        ]
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    ).map(lambda v: __import__("json").dumps(v).encode()),
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "application/xml",
        "application/json; charset=latin-1",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/problem+json",
        "application/ocsp-request",
        "application/timestamp-query",
    ]
)


def test_raw_bodies_never_500(env: ApiEnv, admin: str) -> None:
    targets = [
        (method, re.sub(r"\{[^}]+\}", "0123456789ab", route.path_format))
        for route in api_routes(env.app)
        for method in sorted(route.methods or ())
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    ]
    assert targets

    @settings(
        max_examples=EXAMPLES * 4,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target=st.sampled_from(targets), body=JUNK_BODIES, content_type=CONTENT_TYPES)
    def check(target: tuple[str, str], body: bytes, content_type: str | None) -> None:
        method, path = target
        headers = {"Authorization": admin}
        if content_type:
            headers["Content-Type"] = content_type
        response = env.client.request(method, path, content=body, headers=headers)
        parsed = response.json() if response.headers.get("content-type") == PROBLEM else None
        assert_not_a_server_error(
            response.status_code,
            response.headers.get("content-type", ""),
            parsed,
            f"{method} {path}",
        )

    check()
