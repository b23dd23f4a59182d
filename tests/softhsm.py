"""A private SoftHSM2 token for the tests that need a PKCS#11 module.

Use it from a test module with ``pytest_plugins = ["tests.softhsm"]`` and the
``softhsm`` fixture. The token directory lives under pytest's temporary
directory; ``SOFTHSM2_CONF`` points at it for the rest of the process because
SoftHSM2 reads the variable once, at ``C_Initialize``, and python-pkcs11 can
initialise a module only once per process. So: one token directory per test
process (per xdist worker), set up before anything loads the module, and
tests keep apart by using their own key labels (``softhsm.unique_label()``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from keystore.kek.pkcs11 import Pkcs11Config
from tests.conftest import need_service

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "trust-test"
USER_PIN = "user-pin-1234"
SO_PIN = "so-pin-12345678"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    conf: Path
    token_label: str
    pin: str

    def config(self, kek_label: str | None = None) -> Pkcs11Config:
        return Pkcs11Config(
            module=self.module,
            token_label=self.token_label,
            pin=SecretStr(self.pin),
            kek_label=kek_label or self.unique_label(),
        )

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that uses the same token (and the settings)."""
        return {
            **os.environ,
            "SOFTHSM2_CONF": str(self.conf),
            "TRUST_KEK_PROVIDER": "pkcs11",
            "TRUST_PKCS11_MODULE": str(self.module),
            "TRUST_PKCS11_TOKEN_LABEL": self.token_label,
            "TRUST_PKCS11_PIN": self.pin,
        }

    @staticmethod
    def unique_label(prefix: str = "test") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"


def find_module() -> Path | None:
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    return None


def init_token(util: str, conf: Path, label: str) -> None:
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    util = shutil.which("softhsm2-util")
    module = find_module()
    if util is None or module is None:
        need_service("softhsm2", "softhsm2-util or libsofthsm2.so not installed")
    assert util is not None and module is not None
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    init_token(util, conf, TOKEN_LABEL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        yield SoftHsm(module=module, conf=conf, token_label=TOKEN_LABEL, pin=USER_PIN)
