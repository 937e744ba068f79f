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

    sms_transport: Literal["dev", "smpp", "kannel", "sinch", "linkmobility"] = Field(
        default="dev",
        description="The SMS adapter: dev (the simulated phone), smpp, kannel, sinch or "
        "linkmobility (docs/sms.md).",
    )
    sms_callback_secret: str = Field(
        default="",
        description="Secret the callback URLs' tokens are derived from (receipts and replies "
        "over HTTP; `tilfreds sms callbacks` prints the URLs). Empty on SQLite: generated in "
        "data_dir. Required off SQLite for kannel, sinch and linkmobility.",
    )
    sms_reply_window_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 90,
        description="How long after our last message to a number a reply from it belongs to "
        "that conversation.",
    )
    dev_transport_on_server: bool = Field(
        default=False,
        description="Allow the dev transport (whose phone page needs no sign-in) off SQLite.",
    )
    sms_sender: str = Field(default="2270", description="Numeric sender, so customers can reply.")
    # Sinch SMS REST API (TILFREDS_SMS_TRANSPORT=sinch); see docs/sms.md, "Sinch"
    sinch_service_plan_id: str = Field(default="", description="Sinch service plan id.")
    sinch_api_token: str = Field(default="", description="Sinch REST API token (Bearer).")
    sinch_region: str = Field(
        default="eu", description="Sinch SMS region; only the EU region is accepted (P14)."
    )
    sinch_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Override the API address (tests, emulator); empty: the region's address.",
    )
    sinch_callback_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Public address of tilfreds that Sinch calls back; empty: TILFREDS_PUBLIC_URL.",
    )
    sinch_callback_username: str = Field(
        default="", description="Basic auth user Sinch sends on callbacks; empty: none."
    )
    sinch_callback_password: str = Field(default="", description="Basic auth password for it.")

    # LINK Mobility SMS REST API (TILFREDS_SMS_TRANSPORT=linkmobility); see docs/sms.md
    linkmobility_base_url: str = Field(
        default="https://n-eu.linkmobility.io/sms",
        pattern=r"^https?://\S+$",
        description="The base URL LINK Mobility assigned to the account (ends in /sms).",
    )
    linkmobility_username: str = Field(default="", description="LINK Mobility API user.")
    linkmobility_password: str = Field(default="", description="LINK Mobility API password.")
    linkmobility_platform_id: str = Field(default="", description="platformId from LINK.")
    linkmobility_platform_partner_id: str = Field(
        default="", description="platformPartnerId from LINK."
    )
    linkmobility_gate_id: str = Field(
        default="", description="Gate id LINK set up for delivery reports to our receipt URL."
    )
    linkmobility_source_ton: Literal["SHORTNUMBER", "MSISDN"] = Field(
        default="SHORTNUMBER", description="How LINK reads TILFREDS_SMS_SENDER."
    )
    linkmobility_callback_username: str = Field(
        default="", description="Basic auth user set on the LINK gates (required)."
    )
    linkmobility_callback_password: str = Field(
        default="", description="Basic auth password set on the LINK gates (required)."
    )

    default_region: str = Field(default="NO", description="Region for phone numbers without +code.")

    # SMPP (TILFREDS_SMS_TRANSPORT=smpp): see docs/sms.md, section "SMPP"
    smpp_host: str = Field(default="127.0.0.1", description="The SMSC's host name or address.")
    smpp_port: int = Field(default=2775, ge=1, le=65535, description="The SMSC's SMPP port.")
    smpp_system_id: str = Field(default="", max_length=15, description="Bind system_id.")
    smpp_password: str = Field(default="", max_length=8, description="Bind password.")
    smpp_system_type: str = Field(default="", max_length=12, description="Bind system_type.")
    smpp_tls: bool = Field(default=False, description="Speak SMPP over TLS.")
    smpp_tls_ca_file: str = Field(
        default="", description="CA certificates (PEM) that sign the SMSC's; empty: the system's."
    )
    smpp_binds: int = Field(
        default=1, ge=1, le=32, description="Transceiver binds opened; messages spread over them."
    )
    smpp_window: int = Field(
        default=50, ge=1, le=10_000, description="submit_sm in flight per bind, unanswered."
    )
    smpp_rate: float = Field(
        default=0.0, ge=0, description="Most submit_sm per second per bind; 0 is no limit."
    )
    smpp_enquire_link_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Idle time before an enquire_link is sent."
    )
    smpp_response_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Wait this long for a submit_sm_resp; then the connection is renewed and "
        "the unanswered messages are in doubt.",
    )
    smpp_throttle_seconds: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description="First back-off of a bind the SMSC throttled (ESME_RTHROTTLED, "
        "ESME_RMSGQFUL); doubles while it goes on, up to 60 s.",
    )
    smpp_source_ton: int = Field(
        default=0, ge=0, le=6, description="TON of a numeric sender without + (short code)."
    )
    smpp_source_npi: int = Field(default=1, ge=0, le=18, description="NPI of a numeric sender.")
    smpp_submit_id_base: Literal[0, 10, 16] = Field(
        default=0,
        description="Base of the message ids in submit_sm_resp (10 or 16) so receipts match "
        "whatever base they use; 0 compares ids as text.",
    )
    smpp_receipt_id_base: Literal[0, 10, 16] = Field(
        default=0, description="Base of the id in the receipt text; 0: as submit_sm_resp."
    )
    smpp_provider_name: str = Field(
        default="", description="Who runs the SMSC, for the register of processors (P13)."
    )
    smpp_provider_country: str = Field(
        default="", description="ISO 3166-1 alpha-2 country the SMSC processes data in (P14)."
    )
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
    notice_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Address of the privacy notice the survey page links to; empty: no link.",
    )
    notice_version: str = Field(
        default="2026-11-25",
        max_length=40,
        description="Version of the privacy notice the survey links; stored with each answer "
        "and its contact consent (P5). Change it whenever the notice changes.",
    )

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

    worker_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Messages a worker takes and prepares in one transaction.",
    )
    worker_window: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Messages handed to the transport and not yet recorded, at most: at most "
        "this many are in doubt after a crash. The worker sends in windows of half this, the "
        "next on the wire while the last is recorded (a window of 1 is sent and recorded in "
        "turn).",
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_lease_seconds: int = Field(
        default=300,
        ge=1,
        description="Must exceed the time two windows take to send (one is handed over while "
        "the one before it is still on the wire).",
    )
    worker_sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    worker_backoff_seconds: float = Field(default=1.0, gt=0, le=60)
    unmatched_receipts_days: float = Field(
        default=7.0,
        gt=0,
        le=366,
        description="How long a delivery receipt for an id no message has is kept for "
        "reconciliation (the id may still show up) before the worker's sweep deletes it.",
    )
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

    # Kannel (TILFREDS_SMS_TRANSPORT=kannel; docs/sms.md "Kannel")
    kannel_sendsms_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Kannel's sendsms interface, e.g. http://kannel:13013/cgi-bin/sendsms.",
    )
    kannel_username: str = Field(default="", description="The sendsms-user's username.")
    kannel_password: str = Field(default="", description="The sendsms-user's password.")
    kannel_smsc: str = Field(
        default="", description="The smsc-id to send through; empty lets Kannel route."
    )
    kannel_callback_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="Where Kannel reaches tilfreds for delivery reports (dlr-url), e.g. "
        "http://tilfreds.internal:8000; empty means TILFREDS_PUBLIC_URL.",
    )
    kannel_provider_name: str = Field(
        default="", description="Who runs the SMSC behind Kannel, for the processor register."
    )
    kannel_provider_country: str = Field(
        default="",
        pattern=r"^([A-Z]{2})?$",
        description="ISO country code of where that SMSC processes the messages.",
    )
    kannel_requests_in_flight: int = Field(
        default=8, ge=1, le=100, description="sendsms requests open at once within a window."
    )
    kannel_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="How long one sendsms request may take."
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
