"""The canonical encodings of the audit log and the refusal of secrets in details."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trust.audit.encoding import (
    GENESIS_HASH,
    MAX_DETAILS_BYTES,
    canonical_json,
    chain_hash,
    check_details,
    checkpoint_encoding,
    format_time,
    record_encoding,
)
from trust.errors import AuditRecordRefused
from trust.sm3 import sm3


def test_record_encoding_is_the_documented_canonical_json():
    enc = record_encoding(
        seq=1,
        time=format_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
        actor="alice",
        action="key.generate",
        target="key/7",
        outcome="success",
        request_id=None,
        details={"z": [1, True, None], "a": "é"},
    )
    assert (
        enc
        == (
            '{"action":"key.generate","actor":"alice","details":{"a":"é","z":[1,true,null]},'
            '"outcome":"success","request_id":null,"seq":1,"target":"key/7",'
            '"time":"2026-01-02T03:04:05.000006Z","type":"audit_record","v":1}'
        ).encode()
    )
    assert chain_hash(GENESIS_HASH, enc) == sm3(bytes(32) + enc)


def test_checkpoint_encoding_is_typed_apart_from_records():
    enc = checkpoint_encoding(
        seq=4,
        chain_hash=b"\xab" * 32,
        time="2026-01-01T00:00:00.000000Z",
        key_id="k",
        algorithm="a",
    )
    assert (
        enc
        == (
            '{"algorithm":"a","hash":"' + "ab" * 32 + '","key_id":"k","seq":4,'
            '"time":"2026-01-01T00:00:00.000000Z","type":"audit_checkpoint","v":1}'
        ).encode()
    )


def test_times_are_utc_with_microseconds():
    plus8 = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 1, 1, 8, tzinfo=plus8)) == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


def test_details_are_canonical_json():
    assert check_details({"b": 1, "a": {"y": "ü", "x": [None, False]}}) == (
        '{"a":{"x":[null,false],"y":"ü"},"b":1}'.encode()
    )
    assert check_details(None) == b"{}"


@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter2"},
        {"Password": "hunter2"},
        {"client_secret": "hunter2"},
        {"apiToken": "hunter2"},
        {"access_tokens": ["hunter2"]},
        {"private_key": "hunter2"},
        {"privateKey": "hunter2"},
        {"passphrase": "hunter2"},
        {"passwd": "hunter2"},
        {"so-pin": "hunter2"},
        {"credentials": {"user": "hunter2"}},
        {"key_material": "hunter2"},
        {"keyMaterial": "hunter2"},
        {"KEY_MATERIAL": "hunter2"},
        {"outer": {"inner": {"secret": "hunter2"}}},
        {"items": [{"ok": 1}, {"token": "hunter2"}]},
    ],
    ids=repr,
)
def test_secret_keys_are_refused(details):
    with pytest.raises(AuditRecordRefused) as err:
        check_details(details)
    assert "hunter2" not in str(err.value)  # the refusal never echoes the value


@pytest.mark.parametrize(
    "details",
    [
        {"token_id": "t-1"},
        {"private_key_id": "k-1"},
        {"key_ids": ["k-1"]},
        {"key_id": "k-1", "spin": 1, "pinned": True, "sm3": "ab" * 32},
    ],
    ids=repr,
)
def test_identifiers_of_secrets_are_allowed(details):
    check_details(details)


@pytest.mark.parametrize(
    "details",
    [
        {"digest": b"\x01" * 32},  # as long as an SM2 private scalar: length tells nothing
        {"blob": bytearray(4)},
        {"note": "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----"},
        {"note": "-----BEGIN EC PRIVATE KEY-----"},
        {"ratio": 0.5},
        {"tags": {"a", "b"}},
        {1: "x"},
        {"s": "\ud800"},
        {"big": "a" * MAX_DETAILS_BYTES},
    ],
    ids=lambda d: next(iter(d)) if not isinstance(next(iter(d)), int) else "int-key",
)
def test_unsafe_or_non_json_values_are_refused(details):
    with pytest.raises(AuditRecordRefused):
        check_details(details)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet="abcxyz_é", max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcxyz_é", max_size=6), _json_values, max_size=5))
def test_stored_details_re_encode_to_the_same_bytes(details):
    # verify() re-encodes the stored text and compares: that must never differ for our own writes.
    encoded = check_details(details)
    assert canonical_json(json.loads(encoded)) == encoded
