"""Any exception as OpenAI's error JSON: the one place errors become what a client reads."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import InvalidRequest, ServerError
from server.formats.models import ErrorDetail, ErrorResponse

logger = logging.getLogger(__name__)
INTERNAL = "internal server error; the server log has details"


def error_body(error: ServerError) -> ErrorResponse:
    """The OpenAI error body of a server error."""
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return ErrorResponse(error=detail)


def error_response(error: ServerError) -> JSONResponse:
    """The JSON response of a server error, with its status and headers (Retry-After on a 429)."""
    return JSONResponse(error_body(error).model_dump(), status_code=error.status_code, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every exception a route raises with OpenAI's error JSON."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return error_response(as_server_error(exc))

    for kind in (ServerError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


def as_server_error(exc: Exception, where: str = "a request") -> ServerError:
    """What the client is told of `exc`: itself when it is a ServerError; FastAPI's validation and
    HTTP errors as theirs; anything else is a 500 whose traceback goes to the log (call it in the
    `except` block), never to the client.
    """
    if isinstance(exc, ServerError):
        return exc
    if isinstance(exc, RequestValidationError):
        return described(exc)
    if isinstance(exc, StarletteHTTPException):
        error = ServerError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error
    logger.exception("unexpected error while serving %s", where)
    return ServerError(INTERNAL)


def described(exc: RequestValidationError) -> InvalidRequest:
    """Pydantic's error list as one message that says what to fix."""
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
