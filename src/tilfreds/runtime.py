"""Everything an entrypoint needs, built once from settings: database, keys, clock, SMS transport.

Only entrypoints call ``build_runtime``; it is the one place that reads settings and picks adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.clock import Clock, SystemClock
from tilfreds.config import SUPPORTED_LOCALES, Settings
from tilfreds.crypto import Keys
from tilfreds.db import Database
from tilfreds.errors import ConfigurationError
from tilfreds.invitations.eligibility import CASE_FLAGS, FlagAction, Rules
from tilfreds.invitations.intake import Timing
from tilfreds.invitations.outbox import SendContext
from tilfreds.invitations.schedule import SendWindow
from tilfreds.keyring import load_keys
from tilfreds.sms.dev import DevTransport
from tilfreds.sms.transport import Transport


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: Keys
    clock: Clock
    transport: Transport

    @property
    def dev_phone_enabled(self) -> bool:
        return self.transport.name == "dev"

    def send_context(self) -> SendContext:
        s = self.settings
        return SendContext(
            public_url=s.public_url,
            controller=s.controller_name,
            sender=s.sms_sender,
            rules=self.rules(),
            window=self.send_window(),
        )

    def rules(self) -> Rules:
        s = self.settings
        return Rules(
            fatigue=timedelta(days=s.fatigue_days),
            flag_actions={
                flag: FlagAction.parse(getattr(s, f"flag_{flag}")) for flag in CASE_FLAGS
            },
            max_age=timedelta(days=s.interaction_max_age_days),
            sampling_rate=s.sampling_rate,
            daily_quota=s.daily_quota,
        )

    def send_window(self) -> SendWindow:
        """The send window; off by default with the dev transport, so a person trying tilfreds
        at night sees the SMS at once."""
        s = self.settings
        enabled = s.send_windows if s.send_windows is not None else self.transport.name != "dev"
        return SendWindow(
            start=s.send_window_start,
            end=s.send_window_end,
            no_sundays=s.send_no_sundays,
            no_holidays=s.send_no_holidays,
            enabled=enabled,
            spread=timedelta(minutes=s.send_spread_minutes),
        )

    def timing(self) -> Timing:
        s = self.settings
        return Timing(
            delay=timedelta(minutes=s.invite_delay_minutes),
            valid_for=timedelta(days=s.invitation_valid_days),
            max_age=timedelta(days=s.interaction_max_age_days),
            eligibility=self.rules(),
            window=self.send_window(),
        )

    def upgrade_schema(self) -> None:
        migrate.upgrade(self.db)


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    if settings.default_locale not in SUPPORTED_LOCALES:
        raise ConfigurationError(
            f"TILFREDS_DEFAULT_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}"
        )
    if not settings.sms_sender.isdigit():
        raise ConfigurationError(
            "TILFREDS_SMS_SENDER must be numeric: customers cannot reply to an alphanumeric sender"
        )
    if settings.send_window_start >= settings.send_window_end:
        raise ConfigurationError(
            "TILFREDS_SEND_WINDOW_START must be before TILFREDS_SEND_WINDOW_END (a window within "
            "one day, in the recipient's local time)"
        )
    if settings.sms_transport == "dev" and not (
        settings.is_embedded or settings.dev_transport_on_server
    ):
        raise ConfigurationError(
            "the dev SMS transport shows every message, unauthenticated, at /dev/phone; on a "
            "server configure a real transport, or set TILFREDS_DEV_TRANSPORT_ON_SERVER=1 for a "
            "test system with no real data"
        )
    if settings.is_embedded:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner only
    db = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
    keys = load_keys(
        settings.secret_key,
        previous_keys=settings.previous_secret_keys,
        data_dir=settings.data_dir,
        allow_generate=settings.is_embedded,
        database=db,
    )
    db.set_session_info(audit.session_info(keys))
    clock = clock or SystemClock()
    transport = DevTransport(db, keys, clock)  # the only transport so far; SMPP/HTTP come next
    return Runtime(settings=settings, db=db, keys=keys, clock=clock, transport=transport)
