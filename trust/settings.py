"""The one settings object.

Read from ``TRUST_*`` environment variables and, when ``TRUST_CONFIG`` names a
TOML file, from that file (environment wins). Nothing else in the service
reads the environment: components receive the settings (or the part they
need) from whoever builds them.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from trust.errors import ConfigurationError


class _TomlFileSource(PydanticBaseSettingsSource):
    """Values from the TOML file named by TRUST_CONFIG (flat keys, same names as the fields)."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"cannot read TRUST_CONFIG file {path}: {exc}") from exc
            # Accept either flat keys or a [trust] table.
            self._data = dict(data.get("trust", data))

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUST_", extra="ignore", frozen=True)

    # Where the embedded store, the local master key and the first admin token live.
    var_dir: Path = Path("var")

    # --- HTTP ---
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    max_body_bytes: int = Field(1 << 20, ge=1024, description="request body limit (bytes)")
    # Upload limit of the /v1/documents routes (OFD and PDF files), instead of max_body_bytes.
    document_max_bytes: int = Field(50 << 20, ge=1024, description="document upload limit (bytes)")
    public_verify: bool = Field(True, description="verification endpoints need no token")
    base_url: str = "http://127.0.0.1:8080"
    # Per client (token id, or IP address without a valid token); a burst of
    # rate_limit_requests, refilled over rate_limit_window_seconds (GCRA).
    rate_limit_requests: int = Field(600, ge=1)
    rate_limit_window_seconds: float = Field(60.0, gt=0)
    # How long a POST answer is replayed for a repeated Idempotency-Key.
    idempotency_ttl_seconds: float = Field(86400.0, gt=0)
    # Answers up to this size are kept in the coordination store (larger ones: see
    # api/idempotency.py).
    idempotency_max_inline_bytes: int = Field(1 << 20, ge=1024)

    # --- storage and coordination ---
    database_url: str | None = None  # default: sqlite under var_dir
    redis_url: str | None = None  # None: in-process coordination
    redis_prefix: str = "trust:"

    # --- crypto ---
    sm2_backend: Literal["auto", "openssl", "pure"] = "auto"
    libcrypto_path: str | None = None  # None: the system libcrypto.so.3

    # --- keys ---
    master_key: SecretStr | None = None  # hex SM4 key; overrides the key file
    master_key_file: Path | None = None  # default: var_dir / "master.key"
    kek_provider: Literal["local", "pkcs11"] = "local"  # where the master key (KEK) lives
    pkcs11_module: Path | None = None  # e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token_label: str | None = None
    pkcs11_pin: SecretStr | None = None  # user PIN
    pkcs11_kek_label: str = "trust-kek"  # created in the token on first use if absent
    # Unwrapped keys stay in process memory this long; other workers' changes reach
    # this one by broadcast, so the TTL only bounds staleness when a broadcast is lost.
    key_cache_ttl_seconds: float = Field(60.0, gt=0)
    # Scheduled destruction waits this long (a window to cancel a mistake).
    key_destruction_wait_seconds: float = Field(7 * 86400.0, ge=0)
    # durable: a signature returns only once its audit record is committed. write_behind
    # (opt-in): it returns at once and the record is committed within the interval below,
    # so a crash can lose the records of signatures already returned in that last interval.
    keystore_audit_mode: Literal["durable", "write_behind"] = "durable"
    keystore_audit_write_behind_seconds: float = Field(0.05, gt=0, le=5)

    # --- audit ---
    audit_checkpoint_every: int = Field(1000, ge=1, description="records per signed checkpoint")

    # --- certificate authority ---
    # Base of the URLs written into certificates (CRL distribution point, caIssuers);
    # default: base_url. The OCSP URL defaults to "<ca_base_url>/ocsp".
    ca_base_url: str | None = None
    ca_ocsp_url: str | None = None
    ca_policy_oid: str = "2.5.29.32.0"  # anyPolicy until the service has its own CP arc
    ca_crl_validity_hours: float = Field(24.0, gt=0)
    # Scheduled CRLs: re-signed once within the overlap of their nextUpdate (so one appears
    # every validity - overlap hours; keep it below the validity); the app checks every
    # ca_crl_schedule_seconds (0: no background schedule, CRLs only on demand).
    ca_crl_overlap_hours: float = Field(6.0, gt=0)
    ca_crl_schedule_seconds: float = Field(300.0, ge=0)
    ca_ocsp_cache_seconds: float = Field(300.0, ge=0)
    # A repeated nonce-less OCSP request is answered without reading status for this long;
    # status changes drop those answers at once (other workers: by coordination broadcast).
    ca_ocsp_status_seconds: float = Field(5.0, ge=0)
    ca_default_sm2_root_name: str = "Trust Service SM2 Root CA"
    ca_default_sm2_issuing_name: str = "Trust Service SM2 Issuing CA"
    ca_default_ecdsa_root_name: str = "Trust Service ECDSA Root CA"
    ca_default_ecdsa_issuing_name: str = "Trust Service ECDSA Issuing CA"
    ca_default_organization: str = "Trust Service"

    # --- verification ---
    # External root certificates (PEM or DER files) trusted besides the service's own CAs.
    trust_anchor_files: list[Path] = Field(default_factory=list)

    # --- time-stamp authority ---
    tsa_default_unit: str = "sm2"  # the unit POST /tsa and issue() use when none is named
    # Policy OIDs of the units trustctl init creates: placeholders under the ITU-T
    # example arc (2.999) until the operator has its own TSA policy arc.
    tsa_sm2_policy_oid: str = "2.999.1.1"
    tsa_ecdsa_policy_oid: str = "2.999.1.2"
    tsa_accuracy_ms: int = Field(1000, ge=1, le=60_000)
    # Workers re-read the unit table this often, picking up rotations by other processes.
    tsa_unit_refresh_seconds: float = Field(5.0, gt=0)
    # While this file exists the TSA clock counts as unsynchronised (timeNotAvailable,
    # /readyz 503); the operator's time-source monitor creates and removes it.
    # Default: var_dir / "tsa-clock-unsynchronised".
    tsa_clock_flag_file: Path | None = None

    # --- electronic seals ---
    # Seal officers other than the applicant who must approve a seal before it is made.
    seal_required_approvals: int = Field(1, ge=1, le=10)
    # SES_ESPropertyInfo.type codes by seal type name (GB/T 33481 kinds; codes are local).
    seal_type_codes: dict[str, int] = Field(
        default_factory=lambda: {
            "official": 1,  # 法定名称章
            "finance": 2,  # 财务专用章
            "invoice": 3,  # 发票专用章
            "contract": 4,  # 合同专用章
            "business": 5,  # 业务专用章
            "personal": 6,  # 个人名章
        }
    )
    seal_vendor_id: str = "TRUSTSVC"  # SES_Header.vid of the seals made here
    # The CA that certifies the seal maker (by name); None: the default SM2 issuing CA.
    seal_maker_ca: str | None = None
    seal_maker_validity_days: int = Field(3 * 365, ge=1)

    # --- sealed documents (OFD, PDF) ---
    # pyHanko parses PDFs in Python: each PDF verification or stamping runs in one of
    # document_pdf_workers child processes, within these bounds (document_too_complex).
    document_pdf_workers: int = Field(2, ge=1, le=64)
    document_pdf_seconds: float = Field(5.0, gt=0)
    document_pdf_memory_mb: int = Field(1024, ge=256)
    # OFD packages (zip) are refused beyond these, checked before and while inflating.
    ofd_max_entries: int = Field(10_000, ge=1)
    ofd_max_total_bytes: int = Field(256 << 20, ge=1024)
    ofd_max_entry_bytes: int = Field(128 << 20, ge=1024)
    ofd_max_ratio: int = Field(200, ge=1, description="uncompressed/compressed, entries > 1 MiB")
    ofd_max_xml_bytes: int = Field(16 << 20, ge=1024)

    # --- logging ---
    log_level: str = "INFO"
    access_log: bool = True

    @field_validator("database_url")
    @classmethod
    def _no_empty_url(cls, v: str | None) -> str | None:
        return v or None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'trust.db'}"

    @property
    def effective_ca_base_url(self) -> str:
        return (self.ca_base_url or self.base_url).rstrip("/")

    @property
    def effective_ca_ocsp_url(self) -> str:
        return self.ca_ocsp_url or self.effective_ca_base_url + "/ocsp"

    @property
    def effective_master_key_file(self) -> Path:
        return self.master_key_file or self.var_dir / "master.key"

    @property
    def effective_tsa_clock_flag_file(self) -> Path:
        return self.tsa_clock_flag_file or self.var_dir / "tsa-clock-unsynchronised"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # TRUST_CONFIG is the one environment read outside the fields themselves.
        toml = _TomlFileSource(settings_cls, os.environ.get("TRUST_CONFIG"))
        return (init_settings, env_settings, toml)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own ``Settings(...)``."""
    return Settings()
