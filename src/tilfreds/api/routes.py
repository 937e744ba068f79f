"""``/api/v1``: interactions in (one, or a batch of up to 10,000); surveys and the summary out."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from tilfreds.api import surveys as surveys_api
from tilfreds.api import wrong_numbers as wrong_numbers_api
from tilfreds.api.deps import OperatorDep, RuntimeDep
from tilfreds.api.error_responses import responses
from tilfreds.api.intake_rows import receive_rows, to_interaction
from tilfreds.invitations import funnel, intake, timeline
from tilfreds.invitations.schemas import (
    BATCH_EXAMPLE,
    BATCH_RESULT_EXAMPLE,
    BODY_EXAMPLES,
    RECEIVED_EXAMPLE,
    BatchOut,
    BatchPayload,
    InteractionOut,
    InteractionPayload,
    InvitationOut,
)
from tilfreds.operators.service import Operator
from tilfreds.reporting import service as reporting
from tilfreds.runtime import Runtime

router = APIRouter(prefix="/api/v1")
router.include_router(surveys_api.router)
router.include_router(wrong_numbers_api.router)
BATCH_PATH = "/api/v1/interactions/batch"  # has its own body size limit (api.gate.BodyLimit)
INTAKE = "/api/v1/interactions"  # POST: also a plain route in the app (api.intake_route)


@router.post(
    "/interactions",
    status_code=201,
    response_model=InteractionOut,
    tags=["interactions"],
    summary="Report an interaction",
    responses={
        201: {
            "description": "Received: the survey invitation is scheduled",
            "content": {"application/json": {"example": RECEIVED_EXAMPLE}},
        },
        200: {
            "model": InteractionOut,
            "description": "Already received under this external_id: nothing changed",
            "content": {"application/json": {"example": {**RECEIVED_EXAMPLE, "created": False}}},
        },
        **responses(401, 403, 404, 413, 422),
    },
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": BODY_EXAMPLES}}}},
)
def receive_interaction(payload: InteractionPayload, rt: RuntimeDep, op: OperatorDep) -> Response:
    """Report an interaction; its survey invitation is scheduled. Idempotent on ``external_id``."""
    return receive_one(payload, rt, op)  # in the app, api.intake_route calls it before FastAPI


def receive_one(payload: InteractionPayload, rt: Runtime, op: Operator) -> Response:
    data = to_interaction(payload, rt.settings)
    with rt.db.unit_of_work() as session:
        result = intake.receive_interaction(
            session,
            rt.keys,
            data,
            timing=rt.timing(),
            now=rt.clock.now(),
            actor=op.actor,
            writes_last=True,  # the unit of work commits right after
        )
    inv = result.invitation
    out = InteractionOut(
        id=result.interaction_id,
        external_id=result.external_id,
        created=result.created,
        outcome="scheduled" if inv is not None else "skipped",
        skip_reasons=list(result.skip_reasons),
        invitation=InvitationOut(
            id=inv.id, status=inv.status, survey_id=inv.survey_id, expires_at=inv.expires_at
        )
        if inv is not None
        else None,
    )
    # serialized here, as the model it already is: FastAPI would validate it once more
    return Response(
        out.model_dump_json(),
        status_code=201 if result.created else 200,
        media_type="application/json",
    )


@router.post(
    "/interactions/batch",
    response_model=BatchOut,
    tags=["interactions"],
    summary="Report up to 10,000 interactions",
    responses={
        200: {
            "description": "Each row received, or refused with its own error",
            "content": {"application/json": {"example": BATCH_RESULT_EXAMPLE}},
        },
        **responses(401, 403, 413, 422),
    },
    openapi_extra={"requestBody": {"content": {"application/json": {"example": BATCH_EXAMPLE}}}},
)
def receive_batch(payload: BatchPayload, rt: RuntimeDep, op: OperatorDep) -> JSONResponse:
    """Report many interactions at once. Each row is checked on its own: a bad row gets its own
    error (row number, field, reason) and stores nothing; the good rows are received together,
    with one audit entry. Idempotent on each row's ``external_id``."""
    numbered = list(enumerate(payload.interactions, start=1))
    received = receive_rows(rt, numbered, actor=op.actor)
    # a batch is seconds of one core's work: the client's next batch comes on a new connection,
    # which goes to a web process that is free (``serve --workers``), not back to this one
    return JSONResponse(received.summary(len(numbered)), headers={"Connection": "close"})


@router.get(
    "/interactions/{external_id}",
    tags=["interactions"],
    summary="What became of an interaction",
    responses=responses(401, 403, 404, 422),
)
def interaction_state(external_id: str, rt: RuntimeDep, _op: OperatorDep) -> dict[str, Any]:
    """What became of an interaction: scheduled or skipped (and why), its invitation, and each
    message with its status (queued, claimed, sending, submitted, delivered, failed, expired,
    skipped, in_doubt) and what the provider said (ids, segments, encoding, error code), and
    ``opened_at``: when a person first opened the link (never set by a mere GET of it), and
    ``funnel``: its outcome (scheduled, sent, delivered, opened, answered, declined, expired,
    failed or skipped) with the reasons."""
    with rt.db.read_only() as session:
        state = asdict(timeline.interaction_state(session, external_id))
        state["funnel"] = asdict(funnel.outcome_of(session, external_id))
        return state


@router.get(
    "/reports/summary",
    tags=["reports"],
    summary="Counts and CSAT",
    responses=responses(401, 403),
)
def report_summary(rt: RuntimeDep, _op: OperatorDep) -> dict[str, Any]:
    """Counts and CSAT; a figure from answers is null unless its group is at least ``min_group``."""
    with rt.db.read_only() as session:
        return asdict(reporting.summary(session))
