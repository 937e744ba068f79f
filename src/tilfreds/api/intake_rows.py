"""Rows of interactions as the API and the CSV import take them: each checked on its own, so a bad
row gets its own error (row number, field, reason, never the value) and the good rows of a batch
are received together in one transaction with one audit entry. Phone numbers become E.164 with
the region of the customer's language as default (P10: only the documented fields are accepted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tilfreds.api.error_responses import describe
from tilfreds.config import Settings
from tilfreds.errors import InvalidInput
from tilfreds.invitations import intake
from tilfreds.invitations.schedule import place_of
from tilfreds.invitations.schemas import InteractionPayload
from tilfreds.people.phones import e164, normalise_locale, parse_mobile
from tilfreds.runtime import Runtime

# the region a number without +country code is read in, by the customer's language; English
# speakers live anywhere, so theirs is the configured default region
REGION_OF_LOCALE = {"nb": "NO", "nn": "NO", "sv": "SE", "da": "DK", "fi": "FI"}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str | None
    message: str
    code: str = "invalid_input"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "field": self.field, "message": self.message}


def to_interaction(payload: InteractionPayload, settings: Settings) -> intake.InteractionIn:
    """The payload normalised; InvalidInput (field ``phone`` or ``locale``) if it cannot be."""
    customer = payload.customer
    locale = normalise_locale(customer.locale or settings.default_locale)
    region = REGION_OF_LOCALE.get(locale, settings.default_region)
    number, kind = parse_mobile(customer.phone, region=region)
    return intake.InteractionIn(
        external_id=payload.external_id,
        survey=payload.survey,
        name=customer.name,
        phone_e164=e164(number),
        place=place_of(number, kind),  # parsed once: the send window needs zone and country
        locale=locale,
        channel=payload.channel,
        reason=payload.reason,
        occurred_at=payload.occurred_at,
        case_ref=payload.case_ref,
        flags=frozenset(payload.flags),
    )


def parse_row(raw: object, *, row: int, settings: Settings) -> intake.InteractionIn | RowError:
    if not isinstance(raw, dict):
        return RowError(row, None, "the row must be a JSON object")
    try:
        return to_interaction(InteractionPayload.model_validate(raw), settings)
    except ValidationError as exc:
        field, message = describe(exc.errors(include_url=False, include_input=False)[0])
        return RowError(row, field, message)
    except InvalidInput as exc:
        return RowError(row, f"customer.{exc.details.get('field')}", exc.message)


@dataclass
class Received:
    """What became of a batch's rows: one result per good row, one error per bad one."""

    results: list[dict[str, Any]]
    errors: list[RowError]
    created: int = 0
    existing: int = 0

    def summary(self, received: int) -> dict[str, Any]:
        return {
            "received": received,
            "created": self.created,
            "existing": self.existing,
            "refused": len(self.errors),
            "results": self.results,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class Checked:
    """A batch's rows after their checks: the good ones, numbered, and an error for each other."""

    good: list[tuple[int, intake.InteractionIn]]
    errors: list[RowError]


def check_rows(numbered: Sequence[tuple[int, object]], settings: Settings) -> Checked:
    """Check each ``(row number, raw row)`` on its own; touches no database."""
    good, errors = [], []
    for n, raw in numbered:
        parsed = parse_row(raw, row=n, settings=settings)
        if isinstance(parsed, RowError):
            errors.append(parsed)
        else:
            good.append((n, parsed))
    return Checked(good, errors)


def receive_rows(rt: Runtime, numbered: Sequence[tuple[int, object]], *, actor: str) -> Received:
    """Check each ``(row number, raw row)`` and receive the good ones in one transaction."""
    return receive_checked(rt, check_rows(numbered, rt.settings), actor=actor)


def receive_checked(rt: Runtime, checked: Checked, *, actor: str) -> Received:
    """Receive the good rows in one transaction, which writes one audit entry. Rows are
    all-or-nothing; the good rows are committed together."""
    good, errors = checked.good, list(checked.errors)
    outcome: list[intake.Intake | intake.Refused] = []
    if good:
        with rt.db.unit_of_work() as session:
            outcome = intake.receive_interactions(
                session,
                rt.keys,
                [p for _, p in good],
                timing=rt.timing(),
                now=rt.clock.now(),
                actor=actor,
                audit_each=False,
                writes_last=True,  # the unit of work commits right after
            )
    received = Received(results=[], errors=errors)
    for (n, _), result in zip(good, outcome, strict=True):
        if isinstance(result, intake.Refused):
            received.errors.append(RowError(n, result.field, result.message, result.code))
            continue
        received.created += result.created
        received.existing += not result.created
        received.results.append(
            {
                "row": n,
                "id": result.interaction_id,
                "external_id": result.external_id,
                "created": result.created,
                "outcome": "scheduled" if result.invitation is not None else "skipped",
                "skip_reasons": list(result.skip_reasons),
            }
        )
    received.errors.sort(key=lambda e: e.row)
    return received
