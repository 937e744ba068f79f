"""Settings from the environment (prefix ``TILFREDS_``); the only module that knows their names.

Keeps P1 (the controller is configuration) and refuses configuration it cannot run safely.
"""

from __future__ import annotations

from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_LOCALES = ("nb", "nn", "sv", "da", "fi", "en")
_FLAG = r"^(skip|delay:[0-9]{1,4}[dhm])$"
_FLAG_HELP = "What this case flag does to a survey: skip, or delay:<n>d|h|m after the interaction."


class Settings(BaseSettings):
    """Everything an operator can set. Defaults give the embedded, single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="TILFREDS_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default=Path("var"), description="Where the embedded database and keys live."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in data_dir."
    )
    secret_key: str = Field(
        default="",
        description="Base64 master key (32 bytes). Empty on SQLite: a key file is generated.",
    )
    previous_secret_keys: str = Field(
        default="",
        description="Comma-separated earlier master keys, while `tilfreds keys rotate` runs.",
    )
    public_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Start of links in SMS; empty means the address `tilfreds serve` listens on.",
    )

    sms_transport: Literal["dev"] = "dev"
    dev_transport_on_server: bool = Field(
        default=False,
        description="Allow the dev transport (whose phone page needs no sign-in) off SQLite.",
    )
    sms_sender: str = Field(default="2270", description="Numeric sender, so customers can reply.")
    default_region: str = Field(default="NO", description="Region for phone numbers without +code.")
    default_locale: str = "nb"

    invite_delay_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)
    invitation_valid_days: int = Field(default=7, ge=1, le=90)
    interaction_max_age_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="Older interactions are recorded as skipped (too_old), not asked about.",
    )

    fatigue_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="At most one survey per person per this many days, across all surveys.",
    )
    flag_dispute: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    flag_hardship: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    flag_vulnerable: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    flag_legal_hold: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    flag_cease_contact: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    flag_deceased: str = Field(default="skip", pattern=_FLAG, description=_FLAG_HELP)
    sampling_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of interactions surveyed (0..1), chosen deterministically by "
        "external_id.",
    )
    daily_quota: int | None = Field(
        default=None,
        ge=0,
        description="Invitations per survey per day (UTC); empty means no quota.",
    )
    send_windows: bool | None = Field(
        default=None,
        description="Send survey SMS only inside the window in the recipient's local time. "
        "Empty: off with the dev transport (try it at night), on with any other.",
    )
    send_window_start: time = Field(
        default=time(9, 0), description="Opening of the send window, recipient's local time."
    )
    send_window_end: time = Field(
        default=time(20, 0), description="Closing of the send window, recipient's local time."
    )
    send_no_sundays: bool = Field(default=True, description="Keep the window closed on Sundays.")
    send_no_holidays: bool = Field(
        default=True,
        description="Keep the window closed on public holidays of the recipient's country.",
    )
    send_spread_minutes: int = Field(
        default=60,
        ge=0,
        le=24 * 60,
        description="Messages waiting for an opening are spread over its first this many "
        "minutes, so it does not start with a spike.",
    )

    controller_name: str = "Example Collection AS"
    controller_org_no: str = "999 999 999"
    controller_country: str = "NO"
    dpo_email: str = "personvern@example.no"
    authority_name: str = "Datatilsynet"
    authority_url: str = "https://www.datatilsynet.no/"

    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; a larger one gets 413 before it "
        "is read.",
    )

    max_batch_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest body of POST /api/v1/interactions/batch (up to 10,000 interactions), "
        "in bytes.",
    )

    worker_batch_size: int = Field(default=100, ge=1, le=10_000)
    worker_window: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Messages handed to the transport between two progress records: at most "
        "this many are in doubt after a crash.",
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_lease_seconds: int = Field(
        default=300, ge=1, description="Must exceed the time one window takes to send."
    )
    worker_sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    worker_backoff_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_backoff_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    resend_in_doubt: bool = Field(
        default=False,
        description="Send again messages that were in flight when their worker died (risking a "
        "duplicate) instead of marking them in_doubt. Always on for a transport that "
        "deduplicates on our reference (dev).",
    )
    database_pool_size: int = Field(
        default=40,
        ge=1,
        le=1000,
        description="PostgreSQL connections per process: the web server's thread pool (40) can "
        "use one each.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tilfreds.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        """True for the single-process SQLite setup that runs its worker in-process."""
        return self.resolved_database_url.startswith("sqlite")


def load_settings() -> Settings:
    return Settings()
