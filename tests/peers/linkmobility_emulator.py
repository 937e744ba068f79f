"""A local emulator of LINK Mobility's "Common" SMS REST API as documented (see
tilfreds.sms.linkmobility for the documents): ``POST /sms/send`` with Basic auth, validated as
LINK does (400 with result codes 106200 platformId, 106201 platformPartnerId, 106301 gate; 401
invalid login), answered ``{"messageId", "resultCode": 1005, "description": "Queued"}``, then one
delivery report per part (``{id}${n}``) posted to the gate, with the gate's Basic auth; MO
messages are injected with ``inject_mo``. Payloads start from the documented examples in
``payloads/``."""

from __future__ import annotations

import base64
import math
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from tests.peers.http_emulator import Answer, HttpEmulator, basic_auth, example, json_body

MSISDN = re.compile(r"^\+[1-9][0-9]{6,14}$")
TONS = ("SHORTNUMBER", "ALPHANUMERIC", "MSISDN")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(status: int, code: int, description: str) -> Answer:
    return status, {"status": status, "resultCode": code, "description": description}


def parts(text: str) -> int:
    """How many segments LINK reports for a text (GSM-7 160/153; anything else 70/67)."""
    single, multi = (160, 153) if all(ord(c) < 0x100 for c in text) else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)


class LinkMobilityEmulator(HttpEmulator):
    def __init__(
        self,
        *,
        username: str = "link-user",
        password: str = "link-password",
        platform_id: str = "COMMON_API",
        platform_partner_id: str = "1234",
        gates: dict[str, str] | None = None,  # gate id -> URL, set up by LINK support
        gate_auth: tuple[str, str] | None = None,  # Basic auth configured on the gates
        mo_url: str = "",
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.credentials = (username, password)
        self.platform = (platform_id, platform_partner_id)
        self.gates = gates or {}
        self.gate_auth = gate_auth
        self.mo_url = mo_url
        self.messages: list[dict[str, Any]] = []
        self.outcomes: dict[str, int] = {}  # destination -> resultCode; default 1001 delivered
        self.report_copies = 1

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method != "POST" or path != "/sms/send":
            return 404, None
        if basic_auth(headers) != self.credentials:
            return _error(401, 106100, "Invalid authentication")
        message = json_body(body)
        if not isinstance(message, dict):
            return _error(400, 106000, "Invalid request")
        problem = self._validate(message)
        if problem:
            return problem
        message_id = base64.b64encode(secrets.token_bytes(18)).decode()
        self.messages.append({**message, "messageId": message_id})
        if message.get("useDeliveryReport", True):
            for gate in message.get("deliveryReportGates", []):
                self._report(self.gates[gate], message, message_id)
        return 200, {**example("linkmobility_send_result.json"), "messageId": message_id}

    def _validate(self, message: dict[str, Any]) -> Answer | None:
        if (message.get("platformId"), message.get("platformPartnerId")) != self.platform:
            code = 106200 if message.get("platformId") != self.platform[0] else 106201
            return _error(400, code, "Invalid or missing platformId or platformPartnerId")
        source, destination = message.get("source"), message.get("destination")
        if not isinstance(source, str) or not isinstance(destination, str):
            return _error(400, 106000, "source and destination are required")
        if message.get("sourceTON", "ALPHANUMERIC") not in TONS:
            return _error(400, 106000, "invalid sourceTON")
        if message.get("destinationTON", "MSISDN") == "MSISDN" and not MSISDN.match(destination):
            return _error(400, 2106, "Number error")
        text = message.get("userData")
        # "any character in the UTF-8 2-byte character set (Unicode 4-byte characters are not
        # supported)": the document names no error for them; we answer Invalid user data
        if not isinstance(text, str) or any(ord(c) > 0xFFFF for c in text):
            return _error(400, 4003, "Invalid user data")
        gates = message.get("deliveryReportGates", [])
        if message.get("useDeliveryReport", True) and (
            not gates or any(g not in self.gates for g in gates)
        ):
            return _error(400, 106301, "Specified gate not available")
        return None

    def _report(self, url: str, message: dict[str, Any], message_id: str) -> None:
        code = self.outcomes.get(message["destination"], 1001)
        count = parts(message["userData"])
        for n in range(count):
            report = {
                **example("linkmobility_delivery_report.json"),
                "refId": message.get("refId"),
                "id": f"{message_id}${n}" if count > 1 else message_id,
                "sentTimestamp": _now(),
                "timestamp": _now(),
                "resultCode": code,
                "segments": count,
            }
            for _ in range(self.report_copies):
                self.post_callback(url, report, self.gate_auth)

    def inject_mo(self, source: str, shortnumber: str, text: str) -> dict[str, Any]:
        """A customer's message to our number, posted to the MO gate as LINK posts it."""
        mo = {
            **example("linkmobility_mo.json"),
            "destination": f"NO-{shortnumber}",
            "source": source,
            "content": {"type": "SMS", "userData": text, "encoding": "TEXT"},
            "timestamp": _now(),
            "messageId": secrets.token_hex(12),
        }
        self.post_callback(self.mo_url, mo, self.gate_auth)
        return mo
