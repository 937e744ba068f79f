"""The API's one error shape, ``{"error": {"code", "message", "field"}}``, for domain errors,
refused requests and HTTP errors alike. Messages never repeat the refused input: a refused value
may be personal data, or bytes that cannot even be encoded back (a lone surrogate, NaN)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from tilfreds.errors import TilfredsError

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}
_DEFAULT_MESSAGES = {
    404: "there is nothing at this address; /docs lists the API",
    405: "this address does not take that method; the Allow header lists those it takes",
}
_TIME_EXAMPLE = "such as 2026-11-25T08:30:00+01:00"
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "has a field that is not accepted: only the documented fields are (/docs)",
    "string_type": "must be a string",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "timezone_aware": f"needs a time zone, {_TIME_EXAMPLE}",
    "datetime_type": f"must be a date and time {_TIME_EXAMPLE}",
    "datetime_parsing": f"must be a date and time {_TIME_EXAMPLE}",
    "datetime_from_date_parsing": f"must be a date and time {_TIME_EXAMPLE}",
    "datetime_object_invalid": f"must be a date and time {_TIME_EXAMPLE}",
}
# messages that quote the schema (a limit, the allowed values) or our own validators
# (tilfreds.fields), never the input
_FROM_SCHEMA: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "value_error": lambda ctx: str(ctx.get("error")),
    "string_too_long": lambda ctx: f"must be at most {ctx.get('max_length')} characters",
    "string_too_short": lambda ctx: (
        "must not be empty"
        if ctx.get("min_length") == 1
        else f"must be at least {ctx.get('min_length')} characters"
    ),
    "literal_error": lambda ctx: f"must be one of {ctx.get('expected')}",
    "too_long": lambda ctx: f"must have at most {ctx.get('max_length')} items",
    "too_short": lambda ctx: f"must have at least {ctx.get('min_length')} item(s)",
}
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Stable, for programs: invalid_input, unauthorized, not_found ..."
    )
    message: str = Field(description="For people: what is wrong and how to put it right.")
    field: str | None = Field(
        default=None, description="The field at fault, as a dotted path (customer.phone)."
    )


class ErrorOut(BaseModel):
    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def domain_error(exc: TilfredsError, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": exc.code, "message": exc.message, **exc.details}}
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


def http_error(exc: HTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a body that is not UTF-8; like any other malformed JSON it is
        # refused input, so it gets the same 422
        return error_response(422, "invalid_input", "the body is not valid JSON: it must be UTF-8")
    status = exc.status_code
    phrase = HTTPStatus(status).phrase  # Starlette refuses statuses without one
    detail = exc.detail if isinstance(exc.detail, str) else ""
    # Starlette fills an empty detail with the status phrase; ours says more
    message = (
        detail if detail and detail != phrase else _DEFAULT_MESSAGES.get(status, phrase.lower())
    )
    return error_response(status, HTTP_CODES.get(status, "error"), message, headers=exc.headers)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    """The first refused field with a message of our own (pydantic's may quote the input)."""
    field, message = describe(exc.errors()[0])
    return error_response(422, "invalid_input", message, field=field)


def describe(error: Mapping[str, Any]) -> tuple[str | None, str]:
    """The field path and message for one pydantic error, built only from the schema's side."""
    kind, ctx = error["type"], error.get("ctx") or {}
    loc = list(error["loc"])
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    if kind == "json_invalid":
        where = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
        return None, f"the body is not valid JSON: {ctx.get('error', 'malformed')}{where}"
    if kind == "extra_forbidden":
        loc = loc[:-1]  # the unknown key is the client's text: not repeated
    field = _path(loc)
    if kind in _MESSAGES:
        says = _MESSAGES[kind]
    elif kind in _FROM_SCHEMA:
        says = _FROM_SCHEMA[kind](ctx)
    else:
        says = f"is not valid ({kind})"
    return field, f"{field or 'the body'} {says}"


def _path(loc: list[Any]) -> str | None:
    parts: list[str] = []
    for part in loc:
        # stop at anything that is not a field name or list index (a key the client made up,
        # or pydantic's name for a union member)
        if isinstance(part, int):
            parts.append(str(part))
        elif isinstance(part, str) and _NAME.fullmatch(part):
            parts.append(part)
        else:
            break
    return ".".join(parts) or None


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives, each with an example."""
    return {status: _ERROR_DOCS[status] for status in statuses}


def _doc(description: str, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    example: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        example["field"] = field
    return {
        "model": ErrorOut,
        "description": description,
        "content": {"application/json": {"example": {"error": example}}},
    }


_ERROR_DOCS: dict[int, dict[str, Any]] = {
    401: _doc("No token, or not a valid one", "unauthorized", "a bearer token is required"),
    403: _doc("The token's role may not do this", "forbidden", "this token's role may not do that"),
    404: _doc(
        "Not found: a survey slug that does not exist, or the dev phone when it is off",
        "not_found",
        "no survey has that slug",
        "survey",
    ),
    413: _doc(
        "The body is larger than TILFREDS_MAX_BODY_BYTES",
        "payload_too_large",
        "the request body may be at most 1048576 bytes",
    ),
    422: _doc(
        "A field is missing, malformed or refused; the request changed nothing",
        "invalid_input",
        "customer.phone must be at most 32 characters",
        "customer.phone",
    ),
}
