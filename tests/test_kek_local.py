"""The local master key (SM4-GCM) and the shared blob format."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from keystore.kek import build_kek_provider, kek_id_of
from keystore.kek.blob import MAX_DATA_KEY, NONCE_SIZE, TAG_SIZE
from keystore.kek.local import (
    LocalKek,
    create_local_master_key,
    kek_from_secret,
    load_local_master_key,
)
from trust.errors import ConfigurationError, DecryptionFailed, InvalidLength
from trust.settings import Settings

KEY_HEX = "0123456789abcdeffedcba9876543210"
KEK = kek_from_secret(SecretStr(KEY_HEX))


def test_round_trip() -> None:
    blob = KEK.wrap(b"k" * 32, b"record-1")
    assert KEK.unwrap(blob, b"record-1") == b"k" * 32
    assert kek_id_of(blob) == KEK.kek_id
    assert len(blob) == 2 + len(KEK.kek_id) + NONCE_SIZE + 32 + TAG_SIZE


def test_nonce_is_fresh_per_wrap() -> None:
    assert KEK.wrap(b"k" * 16, b"") != KEK.wrap(b"k" * 16, b"")


def test_kek_id_is_a_fingerprint_not_the_key() -> None:
    assert KEK.kek_id.startswith("sm4:")
    assert KEY_HEX not in KEK.kek_id
    assert KEK.kek_id == kek_from_secret(SecretStr(KEY_HEX.upper())).kek_id
    assert KEK.kek_id != kek_from_secret(SecretStr("00" * 16)).kek_id


def test_secret_never_in_repr_or_describe() -> None:
    for text in (repr(KEK), str(KEK.describe())):
        assert KEY_HEX not in text.lower()
    assert KEK.describe() == {
        "provider": "local",
        "kek_id": KEK.kek_id,
        "algorithm": "SM4-GCM",
        "source": "env",
    }


def test_every_flipped_bit_is_detected() -> None:
    blob = KEK.wrap(b"secret-data-key!", b"aad")
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= bit
            with pytest.raises(DecryptionFailed):
                KEK.unwrap(bytes(bad), b"aad")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b[:20],
        lambda b: b"",
        lambda b: b"\x02" + b[1:],
        lambda b: b[:1] + b"\x00" + b[2:],
        lambda b: b[:1] + b"\xff" + b[2:],
        lambda b: b[:2] + b"\n" + b[3:],
        lambda b: b[:2] + b"\xe4" + b[3:],
    ],
    ids=[
        "truncated",
        "extended",
        "short",
        "empty",
        "version",
        "no-kek-id",
        "kek-id-len",
        "control-char",
        "non-ascii",
    ],
)
def test_malformed_blobs(mutate) -> None:  # type: ignore[no-untyped-def]
    blob = KEK.wrap(b"k" * 32, b"aad")
    with pytest.raises(DecryptionFailed):
        KEK.unwrap(mutate(blob), b"aad")


@pytest.mark.parametrize("bad_id", [b"sm4:\nforged-log-line", b"sm4:\xe4", b"sm4 x"])
def test_kek_id_with_unsafe_characters_is_rejected_before_use(bad_id: bytes) -> None:
    # The id read from a blob reaches error details and logs.
    blob = bytes([1, len(bad_id)]) + bad_id + bytes(12 + 16 + 1)
    with pytest.raises(DecryptionFailed, match="malformed header"):
        kek_id_of(blob)


def test_wrong_aad() -> None:
    blob = KEK.wrap(b"k" * 32, b"record-1")
    for aad in (b"record-2", b"", b"record-1\x00"):
        with pytest.raises(DecryptionFailed):
            KEK.unwrap(blob, aad)


def test_wrong_kek() -> None:
    other = kek_from_secret(SecretStr("ff" * 16))
    blob = KEK.wrap(b"k" * 32, b"aad")
    with pytest.raises(DecryptionFailed) as exc:
        other.unwrap(blob, b"aad")
    assert exc.value.extra == {"kek_id": KEK.kek_id}


def test_relabelled_blob_fails() -> None:
    # Claiming the other KEK's id in the header does not help: the header is authenticated.
    other = kek_from_secret(SecretStr("ff" * 16))
    blob = KEK.wrap(b"k" * 32, b"aad")
    relabelled = blob.replace(KEK.kek_id.encode(), other.kek_id.encode(), 1)
    with pytest.raises(DecryptionFailed):
        other.unwrap(relabelled, b"aad")


@pytest.mark.parametrize("size", [0, MAX_DATA_KEY + 1])
def test_data_key_size_bounds(size: int) -> None:
    with pytest.raises(InvalidLength):
        KEK.wrap(b"k" * size, b"")


@given(
    data_key=st.binary(min_size=1, max_size=600),
    aad=st.binary(max_size=300),
    other_aad=st.binary(max_size=300),
)
def test_round_trip_any_size(data_key: bytes, aad: bytes, other_aad: bytes) -> None:
    blob = KEK.wrap(data_key, aad)
    assert KEK.unwrap(blob, aad) == data_key
    if other_aad != aad:
        with pytest.raises(DecryptionFailed):
            KEK.unwrap(blob, other_aad)


# --- the key file --------------------------------------------------------------


def test_create_and_load(tmp_path: Path) -> None:
    path = tmp_path / "var" / "master.key"
    created = create_local_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text())) == 16
    loaded = load_local_master_key(path)
    assert loaded.kek_id == created.kek_id
    assert loaded.unwrap(created.wrap(b"k" * 32, b"a"), b"a") == b"k" * 32
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp file left


def test_created_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_local_master_key(tmp_path / "master.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = create_local_master_key(path)
    with pytest.raises(ConfigurationError, match="already exists"):
        create_local_master_key(path)
    assert load_local_master_key(path).kek_id == first.kek_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    made: list[LocalKek] = []
    refused: list[ConfigurationError] = []

    def create() -> None:
        try:
            made.append(create_local_master_key(path))
        except ConfigurationError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(refused) == 7
    assert load_local_master_key(path).kek_id == made[0].kek_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644])
def test_key_file_accessible_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_local_master_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 600") as exc:
        load_local_master_key(path)
    assert path.read_text().strip() not in str(exc.value)


def test_owner_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_local_master_key(path)
    path.chmod(0o400)
    load_local_master_key(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_local_master_key(tmp_path / "absent.key")


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    create_local_master_key(tmp_path / "real.key")
    (tmp_path / "link.key").symlink_to(tmp_path / "real.key")
    with pytest.raises(ConfigurationError):
        load_local_master_key(tmp_path / "link.key")


@pytest.mark.parametrize("content", ["not hex at all!!", "abcd", "00" * 17, ""])
def test_bad_key_file_content(tmp_path: Path, content: str) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    with pytest.raises(ConfigurationError) as exc:
        load_local_master_key(path)
    message = str(exc.value).replace(str(path), "<path>")
    assert not content or content not in message


# --- the environment key and the factory -----------------------------------------


@pytest.mark.parametrize("value", ["zz" * 16, "00" * 15, "00" * 32])
def test_bad_env_key_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ConfigurationError, match="TRUST_MASTER_KEY") as exc:
        kek_from_secret(SecretStr(value))
    assert value not in str(exc.value)


def test_factory_prefers_env_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUST_MASTER_KEY", KEY_HEX)
    kek = build_kek_provider(Settings(var_dir=tmp_path))
    assert kek.kek_id == KEK.kek_id
    assert kek.describe()["source"] == "env"


def test_factory_uses_key_file_under_var_dir(tmp_path: Path) -> None:
    created = create_local_master_key(tmp_path / "master.key")
    kek = build_kek_provider(Settings(var_dir=tmp_path))
    assert kek.kek_id == created.kek_id


def test_factory_uses_explicit_key_file(tmp_path: Path) -> None:
    created = create_local_master_key(tmp_path / "elsewhere.key")
    kek = build_kek_provider(Settings(var_dir=tmp_path, master_key_file=tmp_path / "elsewhere.key"))
    assert kek.kek_id == created.kek_id


def test_factory_does_not_create_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        build_kek_provider(Settings(var_dir=tmp_path))
    assert not (tmp_path / "master.key").exists()


def test_pkcs11_settings_must_be_complete() -> None:
    with pytest.raises(ConfigurationError, match="TRUST_PKCS11_MODULE.*TRUST_PKCS11_PIN"):
        build_kek_provider(Settings(kek_provider="pkcs11", pkcs11_token_label="t"))
