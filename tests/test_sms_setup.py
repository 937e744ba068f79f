"""Setting up SMS: adapters chosen by TILFREDS_SMS_TRANSPORT and refused when their provider is
outside the EU/EEA (P13, P14); callback secrets; ``tilfreds sms test`` through the dev transport
(P3); replies matched to their conversation and counted once (P7)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tests.conftest import SECRET, T0
from tests.factories import interaction_in
from tests.test_cli import env_for
from tests.test_worker import intake
from tilfreds import runtime
from tilfreds.cli import app
from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.invitations.inbound import conversation_for, receive_inbound
from tilfreds.runtime import Runtime, build_runtime
from tilfreds.sms import dev
from tilfreds.sms.transport import InboundSms, OutboundSms, Outcome, PerMessage, Provider
from tilfreds.surveys.models import Survey
from tilfreds.worker import Worker


class Abroad(PerMessage):
    name = "sinch"
    provider = Provider(name="Faraway SMS Inc.", country="US")

    def send(self, sms: OutboundSms) -> Outcome:
        raise AssertionError("never sends")


@pytest.fixture
def fake_sinch() -> Iterator[types.ModuleType]:
    """An adapter module in place of tilfreds.sms.sinch (written by another issue's helper)."""
    module = types.ModuleType("tests_fake_sinch")
    module.build = lambda settings: Abroad()  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    saved = runtime.ADAPTERS["sinch"]
    runtime.ADAPTERS["sinch"] = module.__name__
    yield module
    runtime.ADAPTERS["sinch"] = saved
    del sys.modules[module.__name__]


def embedded(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_p14_a_provider_outside_the_eea_is_refused_at_start_up(
    tmp_path: Path, fake_sinch: types.ModuleType
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        build_runtime(embedded(tmp_path, sms_transport="sinch"))
    message = refused.value.message
    assert "TILFREDS_SMS_TRANSPORT=sinch" in message and "US" in message and "EEA" in message


def test_p14_a_provider_in_the_eea_is_accepted_and_named(
    tmp_path: Path, fake_sinch: types.ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    Abroad.provider = Provider(name="Nordic SMS AB", country="se")
    try:
        with caplog.at_level("INFO", logger="tilfreds.runtime"):
            rt = build_runtime(embedded(tmp_path, sms_transport="sinch"))
        rt.db.dispose()
    finally:
        Abroad.provider = Provider(name="Faraway SMS Inc.", country="US")
    assert "provider Nordic SMS AB (se)" in caplog.text


def test_an_adapter_that_is_not_installed_is_a_configuration_error(tmp_path: Path) -> None:
    runtime.ADAPTERS["smpp"], saved = "tilfreds.sms.no_such_adapter", runtime.ADAPTERS["smpp"]
    try:
        with pytest.raises(ConfigurationError, match="TILFREDS_SMS_TRANSPORT=smpp"):
            build_runtime(embedded(tmp_path, sms_transport="smpp"))
    finally:
        runtime.ADAPTERS["smpp"] = saved


def test_the_callback_secret_is_generated_once_on_sqlite_and_required_off_it(
    tmp_path: Path, fake_sinch: types.ModuleType
) -> None:
    first = build_runtime(embedded(tmp_path))
    again = build_runtime(embedded(tmp_path))
    assert first.settings.sms_callback_secret == again.settings.sms_callback_secret != ""
    assert (tmp_path / runtime.CALLBACK_SECRET_FILE).stat().st_mode & 0o077 == 0
    for rt in (first, again):
        rt.db.dispose()
    server = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        secret_key=SECRET,
        sms_transport="kannel",
    )
    with pytest.raises(ConfigurationError, match="TILFREDS_SMS_CALLBACK_SECRET"):
        build_runtime(server)


def test_p3_sms_test_sends_through_the_dev_transport_and_shows_each_step(rt: Runtime) -> None:
    result = CliRunner().invoke(
        app, ["sms", "test", "--to", "412 34 567", "--wait", "10"], env=env_for(rt)
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "provider tilfreds dev phone" in out and "ok   start" in out
    assert "ok   submit" in out and "1 segment(s), GSM-7" in out
    assert "receipt for dev-" in out and "ok   delivered" in out


def test_sms_test_refuses_a_number_that_is_no_mobile(rt: Runtime) -> None:
    result = CliRunner().invoke(app, ["sms", "test", "--to", "12"], env=env_for(rt))
    assert result.exit_code == 2 and "--to" in result.output


def test_sms_callbacks_says_the_dev_transport_takes_none(rt: Runtime) -> None:
    result = CliRunner().invoke(app, ["sms", "callbacks"], env=env_for(rt))
    assert result.exit_code == 0 and "takes no HTTP callbacks" in result.output


def test_a_reply_belongs_to_the_conversation_of_our_last_message_within_the_window(
    rt: Runtime,
) -> None:
    phone = interaction_in(1).phone_e164
    intake(rt, 1)
    Worker(rt).drain()
    window = timedelta(hours=72)

    def match(our_number: str, after: timedelta) -> int | None:
        with rt.db.read_only() as session:
            found = conversation_for(
                session,
                rt.keys,
                phone_e164=phone,
                our_number=our_number,
                default_sender="2270",
                window=window,
                now=rt.clock.now() + after,
            )
        return found.invitation_id if found else None

    assert match("2270", timedelta(hours=1)) is not None
    assert match("+2270", timedelta(hours=71)) is not None
    assert match("2270", timedelta(hours=73)) is None  # too late
    assert match("4799999999", timedelta(hours=1)) is None  # another number of ours
    with rt.db.unit_of_work() as session:  # the survey sends from its own number
        session.execute(update(Survey).values(sender="4759446000"))
    assert match("2270", timedelta(hours=1)) is None
    assert match("+4759446000", timedelta(hours=1)) is not None


def test_a_survey_s_sender_is_the_one_its_messages_go_from(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        session.execute(update(Survey).values(sender="4759446000"))
    intake(rt, 1)
    Worker(rt).drain()
    with rt.db.read_only() as session:
        [sms] = dev.inbox(session, rt.keys)
    assert sms.sender == "4759446000"


def test_p7_an_inbound_message_delivered_again_counts_once(rt: Runtime) -> None:
    stop = InboundSms(
        "dev", sender="+4741234567", to="2270", text="STOPP", received_at=rt.clock.now(),
        provider_id="mo-1",
    )  # fmt: skip
    unreadable = InboundSms(
        "dev", sender="not a number", to="2270", text="STOPP", received_at=rt.clock.now(),
        provider_id="mo-2",
    )  # fmt: skip
    with rt.db.unit_of_work() as session:
        first = receive_inbound(session, rt.keys, [stop, unreadable], region="NO", now=T0)
    with rt.db.unit_of_work() as session:
        again = receive_inbound(session, rt.keys, [stop], region="NO", now=T0)
    assert [o.kind for o in first] == ["objection", "unreadable"]
    assert [o.kind for o in again] == ["duplicate"]
