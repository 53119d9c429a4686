"""One exception tree for everything a whetstone client can fail with."""

from __future__ import annotations

import json
from typing import Any

import httpx


class WhetstoneError(Exception):
    """Base of every error the client raises; `kind` names it in load reports."""

    kind: str = "error"


class ConnectionFailed(WhetstoneError):
    """The server could not be reached, or the connection broke mid-response."""

    kind = "connection_failed"


class RequestTimeout(ConnectionFailed):
    """The server did not answer within the client's timeout."""

    kind = "timeout"


class InvalidResponse(WhetstoneError):
    """The server answered with something that is not a valid OpenAI response."""

    kind = "invalid_response"


class APIError(WhetstoneError):
    """An OpenAI error object sent by the server: message, type, param and code."""

    kind = "api_error"

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.body = body


class StreamError(APIError):
    """An error event sent inside a stream that had already started with HTTP 200."""

    kind = "stream_error"


class APIStatusError(APIError):
    """The server answered with an HTTP error status and an OpenAI error body."""

    def __init__(
        self, message: str, *, status_code: int, headers: httpx.Headers | None = None, **fields: Any
    ) -> None:
        super().__init__(message, **fields)
        self.status_code = status_code
        self.headers = headers or httpx.Headers()
        self.kind = f"http_{status_code}"

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the request is malformed or out of range."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class NotFoundError(APIStatusError):
    """404: unknown route or model."""


class RateLimitError(APIStatusError):
    """429: the server's admission limit is full."""


class ServiceUnavailableError(APIStatusError):
    """503: the engine is not ready or has died."""


class InternalServerError(APIStatusError):
    """Any other 5xx."""


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_fields(payload: Any) -> dict[str, Any] | None:
    """The `error` object of an OpenAI error body, or None when `payload` is not one."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"]
    return None


def api_error_kwargs(error: dict[str, Any], body: Any) -> dict[str, Any]:
    """Constructor arguments of an APIError from an OpenAI `error` object."""
    return {
        "type": error.get("type"),
        "param": error.get("param"),
        "code": error.get("code"),
        "body": body,
    }


def status_error(response: httpx.Response) -> APIStatusError:
    """The typed error for a response with an HTTP error status (its body already read)."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = response.text
    error = error_fields(body) or {}
    message = str(error.get("message") or body or response.reason_phrase)
    default = InternalServerError if response.status_code >= 500 else APIStatusError
    cls = STATUS_ERRORS.get(response.status_code, default)
    return cls(
        message,
        status_code=response.status_code,
        headers=response.headers,
        **api_error_kwargs(error, body),
    )


def transport_error(exc: httpx.TransportError, url: httpx.URL | str) -> ConnectionFailed:
    """The typed error for a failure below HTTP: refused, reset, timed out."""
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"{url}: timed out ({type(exc).__name__})")
    return ConnectionFailed(f"{url}: {type(exc).__name__}: {exc}")
