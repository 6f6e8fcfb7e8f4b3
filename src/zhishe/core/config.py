"""One typed settings object, read from ``ZHISHE_*`` environment variables and an optional ``.env``.

Every setting is documented in ``docs/configuration.md``; a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "reset_settings"]

_SECRET_FILE = "secret_key"  # noqa: S105 - a file name


class Settings(BaseSettings):
    """Everything a deployment may want to change."""

    model_config = SettingsConfigDict(env_prefix="ZHISHE_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = Field(
        "development", description="development, test or production; production refuses unsafe defaults."
    )
    data_dir: Path = Field(Path("var"), description="Where SQLite, the lake, uploads and the secret live.")
    database_url: str = Field(
        "", description="SQLAlchemy URL of the metadata database; default sqlite:///<data_dir>/zhishe.db."
    )
    lake_uri: str = Field("", description="Root of the Delta Lake tables; default <data_dir>/lake.")
    secret_key: SecretStr = Field(
        SecretStr(""), description="Signs sessions and tokens; generated into <data_dir>/secret_key if unset."
    )
    timezone: str = Field(
        "Asia/Shanghai", description="Platform timezone (IANA name) for display and naive input."
    )
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="Default language of pages and messages.")
    max_upload_mb: int = Field(512, ge=1, description="Largest accepted upload, in MiB (HTTP 413 above it).")
    import_issue_limit: int = Field(1000, ge=1, description="How many bad values an import report lists.")
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins on one account before it is throttled."
    )
    login_window_minutes: int = Field(15, ge=1, description="The window in which failed logins are counted.")
    session_hours: int = Field(12, ge=1, description="How long a web login lasts without activity.")
    exchange_reply_days: int = Field(
        5, ge=1, le=60, description="Working days a data owner has to answer a sharing request."
    )
    webhook_max_attempts: int = Field(
        6, ge=1, le=20, description="Delivery attempts of a subscription webhook before it is marked failed."
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhooks to loopback and private addresses (off: no requests to internal hosts).",
    )
    background_workers: bool = Field(
        True,
        description="Run background work in the server process (exchange deadlines and expiries, webhook deliveries).",
    )
    pseudonym_key: SecretStr = Field(
        SecretStr(""),
        description="Key of the HMAC that pseudonymises open-data columns; derived from the secret key if unset. Never exported.",
    )
    opendata_query_timeout: float = Field(
        2.0, gt=0, le=60, description="Seconds an open-data query may run before it is stopped (HTTP 408)."
    )
    opendata_rate_anonymous: int = Field(
        60, ge=1, description="Open-data API calls per minute for each anonymous caller (by address)."
    )
    opendata_rate_token: int = Field(
        1000, ge=1, description="Open-data API calls per minute for each app token (X-App-Token)."
    )
    opendata_rate_window: float = Field(
        60.0, gt=0, le=86400, description="Seconds of the window the open-data rate limits count in."
    )
    opendata_dp_budget: float = Field(
        2.0, gt=0, le=100, description="Default total ε of differentially private releases per dataset."
    )
    rate_limit_url: str = Field(
        "",
        description="Where rate-limit counters live: empty or memory:// in process, redis://host/db when scaled out.",
    )
    iot_max_batch: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Most readings one ingestion request or message may carry (HTTP 413 above it).",
    )
    iot_future_seconds: int = Field(
        300,
        ge=0,
        description="How far in the future (clock skew) a reading's time may be before it is rejected.",
    )
    iot_retention_instantaneous_days: int = Field(
        400, ge=1, description="Days of history kept for instantaneous readings (power, temperature)."
    )
    iot_retention_cumulative_days: int = Field(
        3650, ge=1, description="Days of history kept for cumulative counters (kWh, m³)."
    )
    iot_retention_event_days: int = Field(
        90, ge=1, description="Days of history kept for events (motion, doors, buttons)."
    )
    iot_hot_days: int = Field(
        7, ge=1, le=365, description="Days readings stay in the database after they are copied to the lake."
    )
    iot_flush_seconds: float = Field(
        5.0, gt=0, le=3600, description="Seconds between copies of new readings to the lake history."
    )
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="The MQTT broker the IoT bridge connects to.")
    work_hours: str = Field(
        "09:00-12:00,13:30-17:30",
        description="Working hours of a working day, for SLAs counted in hours (comma-separated ranges).",
    )
    participation_reopen_days: int = Field(
        14, ge=1, le=90, description="Days a resident has to confirm a fix or reopen a closed report."
    )
    participation_max_photos: int = Field(3, ge=0, le=10, description="Photos a report may carry.")
    participation_photo_bytes: int = Field(
        8_000_000, ge=10_000, description="Largest photo accepted, in bytes."
    )
    participation_warn_fraction: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="Share of an SLA used up when the team lead is first warned (escalation rung 1).",
    )
    suggestion_threshold: int = Field(
        50, ge=1, description="Supports after which a suggestion must get an official response."
    )
    suggestion_response_days: int = Field(
        15, ge=1, description="Working days the responsible department has to answer such a suggestion."
    )
    incident_cluster_reports: int = Field(
        5, ge=2, description="Reports of one category and area that, within the window, propose an incident."
    )
    incident_cluster_hours: int = Field(
        6, ge=1, description="The window, in hours, in which clustered reports are counted."
    )
    open311_per_minute: int = Field(
        60, ge=1, description="Default POST requests a minute one Open311 api_key may make."
    )
    map_tile_url: str = Field(
        "", description="Optional map tile URL template ({z}/{x}/{y}); empty draws maps without tiles."
    )
    log_level: str = Field("INFO", description="Log level of the JSON logs (DEBUG, INFO, WARNING, ERROR).")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Asia/Shanghai") from exc
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'zhishe.db').as_posix()}"
        if not self.lake_uri:
            self.lake_uri = str(self.data_dir / "lake")
        if self.environment == "production" and not self.secret_key.get_secret_value():
            raise ValueError("ZHISHE_SECRET_KEY must be set in production")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The platform timezone."""
        return ZoneInfo(self.timezone)

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @property
    def uploads_dir(self) -> Path:
        """Where staged uploads and reject files are kept."""
        return self.data_dir / "uploads"

    @property
    def opendata_dir(self) -> Path:
        """Where the serving copies of open-data releases are kept."""
        return self.data_dir / "opendata"

    def iot_retention(self) -> dict[str, int]:
        """Days of reading history kept, by datastream kind."""
        return {
            "instantaneous": self.iot_retention_instantaneous_days,
            "cumulative": self.iot_retention_cumulative_days,
            "event": self.iot_retention_event_days,
        }

    def pseudonym_secret(self) -> bytes:
        """The pseudonymisation key: the configured one, else one derived from the secret key."""
        configured = self.pseudonym_key.get_secret_value()
        if configured:
            return configured.encode()
        return hmac.new(self.secret().encode(), b"zhishe opendata pseudonyms", hashlib.sha256).digest()

    def secret(self) -> str:
        """The secret key: the configured one, else the one generated into the data directory."""
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured
        path = self.data_dir / _SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
