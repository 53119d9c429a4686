"""The server's one error tree: everything it raises on purpose derives from ServerError.

Each class carries what a client sees of it (HTTP status, OpenAI error type, `param`, `code`);
server/formats/errors.py turns any exception into OpenAI's error JSON, in one place. This module
imports nothing of the project, so the pure sharpening core and the engines raise these too.
"""

from __future__ import annotations


class ServerError(Exception):
    """The root: an error with the HTTP status and OpenAI error type a client gets for it (500)."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers: dict[str, str] = {}


class InvalidRequest(ServerError):
    """The request is malformed or out of range: the client's mistake (400)."""

    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(ServerError):
    """Missing or wrong API key (401)."""

    status_code = 401
    error_type = "invalid_request_error"


class ModelNotFound(ServerError):
    """The request names a model this server does not serve (404)."""

    status_code = 404
    error_type = "invalid_request_error"


class BodyTooLarge(ServerError):
    """The request body is over the server's limit (413)."""

    status_code = 413
    error_type = "invalid_request_error"


class Overloaded(ServerError):
    """The admission limit is full (429), with the seconds to wait in Retry-After."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, code="overloaded")
        self.headers = {"Retry-After": str(retry_after)}


class EngineUnavailable(ServerError):
    """The engine is not ready, has died or failed a request (503)."""

    status_code = 503
    error_type = "service_unavailable"
