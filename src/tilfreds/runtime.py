"""Everything an entrypoint needs, built once from settings: database, keys, clock, SMS transport.

Only entrypoints call ``build_runtime``; it is the one place that reads settings and picks adapters.
An SMS adapter is loaded only when chosen, and refused when its provider processes data outside
the EU/EEA (P13, P14).
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.clock import Clock, SystemClock
from tilfreds.config import SUPPORTED_LOCALES, Settings
from tilfreds.crypto import Keys
from tilfreds.db import Database
from tilfreds.errors import ConfigurationError
from tilfreds.invitations.conversation import ReplyContext
from tilfreds.invitations.eligibility import CASE_FLAGS, FlagAction, Rules
from tilfreds.invitations.inbound import receive_inbound
from tilfreds.invitations.intake import Timing
from tilfreds.invitations.outbox import SendContext
from tilfreds.invitations.receipts import record_receipts
from tilfreds.invitations.schedule import SendWindow
from tilfreds.keyring import load_keys
from tilfreds.sms.dev import DevTransport
from tilfreds.sms.transport import InboundSms, Receipt, Transport, TransportError

log = logging.getLogger(__name__)
# the EU's 27 and the EEA's three (ISO 3166-1 alpha-2; Greece is GR)
EEA_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
        "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
    }
)  # fmt: skip
# the adapters other than dev, each a module with ``build(settings) -> Transport``
ADAPTERS = {
    "smpp": "tilfreds.sms.smpp",
    "kannel": "tilfreds.sms.kannel",
    "sinch": "tilfreds.sms.sinch",
    "linkmobility": "tilfreds.sms.linkmobility",
}
HTTP_CALLBACKS = frozenset({"kannel", "sinch", "linkmobility"})
CALLBACK_SECRET_FILE = "sms_callback.secret"  # noqa: S105 - a file name


class DatabaseEvents:
    """Where a transport's receipts and replies go, one transaction per call (TransportEvents)."""

    def __init__(
        self, db: Database, keys: Keys, clock: Clock, *, region: str, replies: ReplyContext
    ) -> None:
        self._db, self._keys, self._clock, self._region = db, keys, clock, region
        self._replies = replies

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        if receipts:
            with self._db.unit_of_work() as session:
                record_receipts(session, receipts, now=self._clock.now())

    def inbound(self, messages: Sequence[InboundSms]) -> None:
        if messages:
            with self._db.unit_of_work() as session:
                receive_inbound(
                    session,
                    self._keys,
                    messages,
                    region=self._region,
                    now=self._clock.now(),
                    replies=self._replies,
                )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: Keys
    clock: Clock
    transport: Transport

    @property
    def events(self) -> DatabaseEvents:
        return DatabaseEvents(
            self.db,
            self.keys,
            self.clock,
            region=self.settings.default_region,
            replies=self.reply_context(),
        )

    @property
    def dev_phone_enabled(self) -> bool:
        return self.transport.name == "dev"

    def reply_context(self) -> ReplyContext:
        """What reading replies as two-way survey answers needs."""
        s = self.settings
        return ReplyContext(
            default_sender=s.sms_sender,
            window=timedelta(hours=s.sms_reply_window_hours),
            controller=s.controller_name,
            notice_version=s.notice_version,
        )

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
    settings.sms_callback_secret = _callback_secret(settings)
    if settings.sms_transport == "dev":
        transport: Transport = DevTransport(db, keys, clock)
    else:
        transport = load_transport(settings)
    check_provider(transport)
    provider = transport.provider
    log.info("SMS transport %s, provider %s (%s)", transport.name, provider.name, provider.country)
    return Runtime(settings=settings, db=db, keys=keys, clock=clock, transport=transport)


def load_transport(settings: Settings) -> Transport:
    """The chosen adapter, imported only now (its dependencies are needed only if chosen)."""
    name = settings.sms_transport
    if name not in ADAPTERS:
        raise ConfigurationError(f"TILFREDS_SMS_TRANSPORT: there is no adapter named {name!r}")
    try:
        module = importlib.import_module(ADAPTERS[name])
    except ImportError as exc:
        raise ConfigurationError(
            f"TILFREDS_SMS_TRANSPORT={name}: the adapter cannot be loaded "
            f"({exc.name or 'an import'} is missing); is tilfreds installed whole?"
        ) from exc
    build = getattr(module, "build", None)
    if build is None:
        raise ConfigurationError(f"TILFREDS_SMS_TRANSPORT={name}: the adapter has no build()")
    try:
        transport: Transport = build(settings)
    except (TransportError, ValueError) as exc:
        raise ConfigurationError(f"TILFREDS_SMS_TRANSPORT={name}: {exc}") from exc
    return transport


def check_provider(transport: Transport) -> None:
    """Refuse a provider that processes the messages outside the EU/EEA (P14)."""
    country = transport.provider.country.upper()
    if country not in EEA_COUNTRIES:
        raise ConfigurationError(
            f"TILFREDS_SMS_TRANSPORT={transport.name}: its provider {transport.provider.name} "
            f"processes the messages in {country or 'an unknown country'}, outside the EU/EEA; "
            "the privacy notice promises the data stays in the EU/EEA (P14)"
        )


def _callback_secret(settings: Settings) -> str:
    """The configured callback secret, or on the embedded default one generated once and kept
    in data_dir; required for a transport whose provider calls back over HTTP."""
    if settings.sms_callback_secret:
        return settings.sms_callback_secret
    if not settings.is_embedded:
        if settings.sms_transport in HTTP_CALLBACKS:
            raise ConfigurationError(
                "TILFREDS_SMS_CALLBACK_SECRET is required off SQLite for the "
                f"{settings.sms_transport} transport: its callback URLs are derived from it"
            )
        return ""
    path = settings.data_dir / CALLBACK_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
