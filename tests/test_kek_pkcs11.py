"""The PKCS#11 master key, against a private SoftHSM2 token (required in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pkcs11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11
from pydantic import SecretStr

from keystore.kek import build_kek_provider, kek_id_of
from keystore.kek.local import kek_from_secret
from keystore.kek.pkcs11 import Pkcs11Config, Pkcs11Kek, token_session
from trust.errors import BackendUnavailable, ConfigurationError, DecryptionFailed
from trust.settings import Settings

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.softhsm import SoftHsm

pytest_plugins = ["tests.softhsm"]
pytestmark = pytest.mark.softhsm


@pytest.fixture
def kek(softhsm: SoftHsm) -> Pkcs11Kek:
    return Pkcs11Kek(softhsm.config())


def _kek_objects(config: Pkcs11Config) -> list[pkcs11.Object]:
    with token_session(config, "test") as session:
        return list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: config.kek_label}
            )
        )


def test_round_trip(kek: Pkcs11Kek) -> None:
    blob = kek.wrap(b"k" * 32, b"record-1")
    assert kek.unwrap(blob, b"record-1") == b"k" * 32
    assert kek_id_of(blob) == kek.kek_id
    assert kek.kek_id.startswith("p11:")


def test_kek_created_once_on_first_use(softhsm: SoftHsm) -> None:
    config = softhsm.config()
    assert _kek_objects(config) == []
    first = Pkcs11Kek(config)
    first.wrap(b"k" * 16, b"")
    second = Pkcs11Kek(config)  # a new provider finds the key instead of making another
    assert second.kek_id == first.kek_id
    assert len(_kek_objects(config)) == 1


def test_kek_attributes_non_extractable(kek: Pkcs11Kek, softhsm: SoftHsm) -> None:
    kek.wrap(b"k" * 16, b"")
    config = Pkcs11Config(
        module=softhsm.module,
        token_label=softhsm.token_label,
        pin=SecretStr(softhsm.pin),
        kek_label=kek.describe()["key_label"],
    )
    with token_session(config, "test") as session:
        (key,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: config.kek_label}
        )
        assert key[Attribute.KEY_TYPE] == KeyType.AES
        assert key[Attribute.VALUE_LEN] == 32
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.ENCRYPT] is True and key[Attribute.DECRYPT] is True
        assert key[Attribute.WRAP] is False and key[Attribute.SIGN] is False
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]
        # Once sensitive and non-extractable, a key cannot be made exportable again.
        with pytest.raises(p11.PKCS11Error):
            key[Attribute.EXTRACTABLE] = True
        with pytest.raises(p11.PKCS11Error):
            key[Attribute.SENSITIVE] = False


def test_tamper_and_wrong_aad(kek: Pkcs11Kek) -> None:
    blob = kek.wrap(b"secret-data-key!", b"aad")
    header_len = 2 + len(kek.kek_id)
    # Every byte after the header (nonce, ciphertext, tag); header bytes are tried below.
    for i in range(header_len, len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            kek.unwrap(bytes(bad), b"aad")
    for bad_blob in (blob[:-1], blob + b"\x00", blob[: header_len + 12 + 16], b"\x01"):
        with pytest.raises(DecryptionFailed):
            kek.unwrap(bad_blob, b"aad")
    with pytest.raises(DecryptionFailed):
        kek.unwrap(blob, b"aaD")
    assert kek.unwrap(blob, b"aad") == b"secret-data-key!"  # the session survives failures


def test_wrong_kek(softhsm: SoftHsm, kek: Pkcs11Kek) -> None:
    other = Pkcs11Kek(softhsm.config())
    blob = kek.wrap(b"k" * 32, b"aad")
    assert other.kek_id != kek.kek_id
    with pytest.raises(DecryptionFailed):
        other.unwrap(blob, b"aad")
    # A local-key blob and a header naming a key that is not in the token.
    with pytest.raises(DecryptionFailed):
        kek.unwrap(kek_from_secret(SecretStr("00" * 16)).wrap(b"k" * 32, b"aad"), b"aad")
    relabelled = blob.replace(kek.kek_id.encode(), other.kek_id.encode(), 1)
    with pytest.raises(DecryptionFailed):
        other.unwrap(relabelled, b"aad")


def test_extractable_kek_is_refused(softhsm: SoftHsm) -> None:
    config = softhsm.config()
    with token_session(config, "test") as session:
        session.generate_key(
            KeyType.AES,
            256,
            id=b"weak",
            label=config.kek_label,
            store=True,
            template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        )
    with pytest.raises(ConfigurationError, match="refusing"):
        Pkcs11Kek(config).wrap(b"k" * 16, b"")


def test_duplicate_keks_all_stay_readable(softhsm: SoftHsm) -> None:
    # Two processes creating the KEK at once leave two keys with one label.
    config = softhsm.config()
    with token_session(config, "test") as session:
        for cka_id in (b"\x02" * 8, b"\x01" * 8):
            session.generate_key(
                KeyType.AES,
                256,
                id=cka_id,
                label=config.kek_label,
                store=True,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
            )
    kek = Pkcs11Kek(config)
    assert kek.kek_id == "p11:" + "01" * 8  # the lowest CKA_ID, whoever asks
    blob = kek.wrap(b"k" * 32, b"aad")
    assert kek.unwrap(blob, b"aad") == b"k" * 32


def test_describe_and_repr_hold_no_secret(kek: Pkcs11Kek, softhsm: SoftHsm) -> None:
    described = kek.describe()
    assert described["provider"] == "pkcs11"
    assert described["kek_id"] == kek.kek_id
    assert softhsm.pin not in str(described) + repr(kek) + repr(softhsm.config())


def test_missing_token(softhsm: SoftHsm) -> None:
    config = Pkcs11Config(module=softhsm.module, token_label="absent", pin=SecretStr("x"))
    with pytest.raises(BackendUnavailable, match="not found"):
        Pkcs11Kek(config).wrap(b"k" * 16, b"")


def test_wrong_pin_is_a_configuration_error(softhsm: SoftHsm) -> None:
    # In a fresh process: login is shared by every session of this one.
    child = (
        "from keystore.kek import build_kek_provider\n"
        "from trust.errors import ConfigurationError\n"
        "from trust.settings import Settings\n"
        "try:\n"
        "    build_kek_provider(Settings()).wrap(b'k' * 16, b'')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child],
        env={**softhsm.env(), "TRUST_PKCS11_PIN": "wrong-pin-9999"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "login to PKCS#11 token" in result.stdout
    assert "PinIncorrect" in result.stdout
    assert "wrong-pin" not in result.stdout + result.stderr


def test_threads_share_the_session(kek: Pkcs11Kek) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                aad = f"{n}-{i}".encode()
                data_key = os.urandom(32)
                assert kek.unwrap(kek.wrap(data_key, aad), aad) == data_key
        except BaseException as exc:  # reported below, from the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_factory_builds_pkcs11_provider(softhsm: SoftHsm) -> None:
    settings_ = Settings(
        kek_provider="pkcs11",
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token_label,
        pkcs11_pin=SecretStr(softhsm.pin),
        pkcs11_kek_label=softhsm.unique_label(),
    )
    kek = build_kek_provider(settings_)
    assert isinstance(kek, Pkcs11Kek)
    assert kek.unwrap(kek.wrap(b"k" * 32, b"a"), b"a") == b"k" * 32


_CHILD = """
import sys
from keystore.kek import build_kek_provider
from trust.settings import Settings

kek = build_kek_provider(Settings())
blob = bytes.fromhex(sys.stdin.read())
print(kek.unwrap(blob, b"from-parent").hex())
print(kek.wrap(b"child-data-key!!", b"from-child").hex())
"""


def test_key_persists_across_processes(softhsm: SoftHsm) -> None:
    label = softhsm.unique_label()
    kek = Pkcs11Kek(softhsm.config(label))
    blob = kek.wrap(b"parent-data-key!", b"from-parent")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=blob.hex(),
        env={**softhsm.env(), "TRUST_PKCS11_KEK_LABEL": label},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unwrapped_hex, child_blob_hex = result.stdout.split()
    assert bytes.fromhex(unwrapped_hex) == b"parent-data-key!"
    child_blob = bytes.fromhex(child_blob_hex)
    assert kek_id_of(child_blob) == kek.kek_id
    assert kek.unwrap(child_blob, b"from-child") == b"child-data-key!!"


def test_forked_child_reinitialises_the_module(kek: Pkcs11Kek) -> None:
    blob = kek.wrap(b"k" * 32, b"aad")  # the parent has the module open
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            ok = kek.unwrap(blob, b"aad") == b"k" * 32
            ok = ok and kek.unwrap(kek.wrap(b"c" * 16, b""), b"") == b"c" * 16
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert kek.unwrap(blob, b"aad") == b"k" * 32  # the parent's session is untouched


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data_key=st.binary(min_size=1, max_size=1024), aad=st.binary(max_size=256))
def test_round_trip_any_size(kek: Pkcs11Kek, data_key: bytes, aad: bytes) -> None:
    blob = kek.wrap(data_key, aad)
    assert kek.unwrap(blob, aad) == data_key
    with pytest.raises(DecryptionFailed):
        kek.unwrap(blob, aad + b"x")
