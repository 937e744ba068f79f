"""``tilfreds sms callbacks`` with the Kannel transport prints the ``get-url`` to put in Kannel's
``sms-service`` and the dlr-url tilfreds sends with each SMS, on Kannel's own callback base URL;
the printed get-url, filled in as Kannel fills it for a customer's "STOPP", works against the
callback route (P7)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.test_cli import env_for
from tilfreds.app import create_app
from tilfreds.cli import app
from tilfreds.people.models import Suppression
from tilfreds.runtime import Runtime
from tilfreds.sms import kannel
from tilfreds.sms.kannel import DLR_QUERY, MO_QUERY

SECRET = "kannel-cli-callback-secret"
KANNEL_BASE = "http://tilfreds.internal:8000"
SETTINGS = {
    "TILFREDS_SMS_TRANSPORT": "kannel",
    "TILFREDS_KANNEL_SENDSMS_URL": "http://127.0.0.1:9/cgi-bin/sendsms",
    "TILFREDS_KANNEL_USERNAME": "tilfreds",
    "TILFREDS_KANNEL_PASSWORD": "ks-pass",
    "TILFREDS_KANNEL_CALLBACK_BASE_URL": KANNEL_BASE,
    "TILFREDS_KANNEL_PROVIDER_NAME": "Operator SMSC AS",
    "TILFREDS_KANNEL_PROVIDER_COUNTRY": "NO",
    "TILFREDS_SMS_CALLBACK_SECRET": SECRET,
    "TILFREDS_PUBLIC_URL": "https://survey.example.no",  # Kannel's own base URL wins
}
# what Kannel puts for each placeholder of the get-url when a customer answers "STOPP"
KANNEL_FILLS = {
    "%p": "4741234567",
    "%P": "2270",
    "%a": quote("Stopp"),
    "%c": "0",
    "%C": "UTF-8",
    "%I": "b3d27155-4eca-40f6-a961-414e9443b7b5",
    "%T": "1795637865",
}


def printed(rt: Runtime) -> dict[str, str]:
    result = CliRunner().invoke(app, ["sms", "callbacks"], env={**env_for(rt), **SETTINGS})
    assert result.exit_code == 0, result.output
    return dict(line.split(": ", 1) for line in result.output.splitlines())


def test_p7_sms_callbacks_prints_the_get_url_for_kannel_and_it_works(rt: Runtime) -> None:
    urls = printed(rt)
    get_url = urls["inbound"]
    assert get_url.startswith(f"{KANNEL_BASE}/sms/kannel/inbound/")
    assert get_url.endswith(f"?{MO_QUERY}")
    assert urls["receipt"].startswith(f"{KANNEL_BASE}/sms/kannel/receipt/")
    assert urls["receipt"].endswith(DLR_QUERY)

    filled = get_url
    for placeholder, value in KANNEL_FILLS.items():
        filled = filled.replace(placeholder, value)
    for name, value in SETTINGS.items():
        setattr(rt.settings, name.removeprefix("TILFREDS_").lower(), value)
    rt.transport = kannel.build(rt.settings)
    url = urlsplit(filled)
    with TestClient(create_app(rt)) as client:
        assert client.get(f"{url.path}?{url.query}").status_code == 200
        dlr = urlsplit(urls["receipt"])  # its token too is the one the route takes
        assert client.get(dlr.path, params={"ref": "1", "type": "8"}).status_code == 200
    with rt.db.read_only() as session:
        assert session.execute(select(func.count()).select_from(Suppression)).scalar() == 1
