"""Domain errors, each with a stable code and the HTTP status it is rendered with (4xx)."""

from __future__ import annotations

from typing import Any, ClassVar


class TilfredsError(Exception):
    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(TilfredsError):
    code, http_status = "configuration_error", 500


class InvalidInput(TilfredsError):
    code, http_status = "invalid_input", 422


class NotFound(TilfredsError):
    code, http_status = "not_found", 404


class Unauthorized(TilfredsError):
    code, http_status = "unauthorized", 401


class Forbidden(TilfredsError):
    code, http_status = "forbidden", 403


class Gone(TilfredsError):
    code, http_status = "gone", 410


class Conflict(TilfredsError):
    code, http_status = "conflict", 409
