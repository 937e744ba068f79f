"""A local emulator of the Sinch SMS REST API as documented (see tilfreds.sms.sinch for the pages):
``POST /xms/v1/{service_plan_id}/batches`` with a Bearer token, validated as Sinch does (error
``{"code", "text"}``: 400 ``syntax_invalid_json`` / ``syntax_constraint_violation`` /
``syntax_invalid_parameter_format``, 403 ``missing_callback_url``), answered with the documented
batch, then one ``recipient_delivery_report_sms`` per recipient posted to the batch's
``callback_url``; inbound (``mo_text``) is injected with ``inject_mo``. Payloads start from the
documented examples in ``payloads/``."""

from __future__ import annotations

import itertools
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.peers.http_emulator import Answer, HttpEmulator, example, json_body

MSISDN = re.compile(r"^\+?[1-9][0-9]{6,14}$")
REPORTS = ("none", "summary", "full", "per_recipient", "per_recipient_final")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, code: str, text: str) -> Answer:
    return status, {"code": code, "text": text}


class SinchEmulator(HttpEmulator):
    def __init__(
        self,
        *,
        service_plan_id: str = "jd63jf88477ll123ab4567cd89012ef3",
        api_token: str = "sinch-token",
        callback_auth: tuple[str, str] | None = None,
        mo_url: str = "",
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.service_plan_id = service_plan_id
        self.api_token = api_token
        self.callback_auth = callback_auth  # Basic auth Sinch provisions on callback URLs
        self.mo_url = mo_url  # set in the Sinch dashboard for inbound messages
        self.batches: list[dict[str, Any]] = []
        # recipient -> (status, code) of its delivery report; default Delivered, code 0
        self.outcomes: dict[str, tuple[str, int]] = {}
        self.report_copies = 1  # >1: the same report is posted again (providers repeat)
        self.reports = True  # False: take batches but post no delivery reports
        self._ids = itertools.count(1)

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method != "POST" or path != f"/xms/v1/{self.service_plan_id}/batches":
            return 404, None
        if headers.get("authorization") != f"Bearer {self.api_token}":
            return 401, None
        batch = json_body(body)
        if not isinstance(batch, dict):
            return _error(400, "syntax_invalid_json", "The JSON in the request is invalid")
        problem = _validate(batch)
        if problem:
            return problem
        created = {
            **example("sinch_batch_created.json"),
            **{
                k: batch[k]
                for k in ("to", "from", "body", "callback_url", "client_reference")
                if k in batch
            },
            "id": f"01SINCHEMU{next(self._ids):016d}",
            "delivery_report": batch.get("delivery_report", "none"),
            "created_at": _now(),
            "modified_at": _now(),
        }
        self.batches.append(created)
        if self.reports and created["delivery_report"] in ("per_recipient", "per_recipient_final"):
            for recipient in created["to"]:
                self._report(created, recipient)
        return 201, created

    def _report(self, batch: dict[str, Any], recipient: str) -> None:
        status, code = self.outcomes.get(recipient.removeprefix("+"), ("Delivered", 0))
        report = {
            **example("sinch_recipient_delivery_report.json"),
            "batch_id": batch["id"],
            "recipient": recipient.removeprefix("+"),
            "status": status,
            "code": code,
            "at": _now(),
            "operator_status_at": _now(),
        }
        if "client_reference" in batch:
            report["client_reference"] = batch["client_reference"]
        else:
            report.pop("client_reference", None)
        for _ in range(self.report_copies):
            self.post_callback(batch["callback_url"], report, self.callback_auth)

    def inject_mo(self, sender: str, to: str, body: str) -> dict[str, Any]:
        """A customer's reply, posted to the dashboard's inbound URL as Sinch posts it."""
        mo = {
            **example("sinch_mo_text.json"),
            "id": f"01SINCHMO{secrets.token_hex(8).upper()}",
            "from": sender.removeprefix("+"),
            "to": to,
            "body": body,
            "received_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        }
        self.post_callback(self.mo_url, mo, self.callback_auth)
        return mo


def _validate(batch: dict[str, Any]) -> Answer | None:
    to, body = batch.get("to"), batch.get("body")
    if not isinstance(to, list) or not 1 <= len(to) <= 1000 or not isinstance(body, str):
        return _error(400, "syntax_constraint_violation", "to and body are required")
    if len(body) > 2000 or not isinstance(batch.get("from", ""), str):
        return _error(400, "syntax_constraint_violation", "body too long or from invalid")
    if not all(isinstance(n, str) and MSISDN.match(n) for n in to):
        return _error(400, "syntax_invalid_parameter_format", "invalid MSISDN in to")
    report = batch.get("delivery_report", "none")
    if report not in REPORTS:
        return _error(400, "syntax_invalid_parameter_format", "invalid delivery_report")
    if report != "none" and not batch.get("callback_url"):
        return _error(403, "missing_callback_url", "no callback URL for delivery reports")
    return None


def main() -> None:
    """``python -m tests.peers.sinch_emulator --port P [--latency S] [--no-reports]``: serve until
    killed (for benchmarks and trying a set-up by hand)."""
    import argparse
    import threading

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--no-reports", action="store_true", help="post no delivery reports")
    args = parser.parse_args()
    with SinchEmulator(port=args.port) as emulator:
        emulator.delay = args.latency
        emulator.reports = not args.no_reports
        threading.Event().wait()


if __name__ == "__main__":
    main()
