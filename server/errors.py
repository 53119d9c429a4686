"""Typed API errors and the one place they become OpenAI error JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.protocol import ErrorDetail, ErrorResponse
from server.sharpening import InvalidSharpening

logger = logging.getLogger(__name__)


class APIError(Exception):
    """An error the client sees, with its HTTP status and OpenAI error type."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers: dict[str, str] = {}

    def body(self) -> ErrorResponse:
        """The OpenAI error body."""
        return ErrorResponse(
            error=ErrorDetail(message=self.message, type=self.error_type, param=self.param, code=self.code)
        )


class InvalidRequest(APIError):
    """The request is malformed or out of range (400)."""

    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(APIError):
    """Missing or wrong API key (401)."""

    status_code = 401
    error_type = "invalid_request_error"


class ModelNotFound(APIError):
    """The request names a model this server does not serve (404)."""

    status_code = 404
    error_type = "invalid_request_error"


class Overloaded(APIError):
    """The admission limit is full (429)."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, code="overloaded")
        self.headers = {"Retry-After": str(retry_after)}


class EngineUnavailable(APIError):
    """The engine is not ready or has died (503)."""

    status_code = 503
    error_type = "service_unavailable"


def error_response(error: APIError) -> JSONResponse:
    """The JSON response for an API error."""
    return JSONResponse(error.body().model_dump(), status_code=error.status_code, headers=error.headers)


def describe_validation_error(exc: RequestValidationError) -> InvalidRequest:
    """Turn pydantic's error list into one message that says what to fix."""
    problems = []
    first_param = None
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        param = ".".join(loc) or None
        first_param = first_param or param
        if err.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
        elif param:
            problems.append(f"{param}: {err.get('msg', 'invalid value')}")
        else:
            problems.append(str(err.get("msg", "invalid request")))
    return InvalidRequest("; ".join(problems) or "invalid request", param=first_param)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to an OpenAI error body, once."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(InvalidSharpening)
    async def _invalid_sharpening(_: Request, exc: InvalidSharpening) -> JSONResponse:
        return error_response(InvalidRequest(str(exc), param=exc.param))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(describe_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = APIError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error while serving a request")
        return error_response(APIError("internal server error; the server log has details"))
