"""When to retry a request and how long to wait first (pure: no I/O, no sleeping)."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({429, 503})
RETRY_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on 429, 503 and connection errors; a server's Retry-After wins."""

    max_retries: int = 2
    backoff: float = 0.5
    max_delay: float = 30.0

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1` when the server gave no hint."""
        return float(min(self.max_delay, self.backoff * 2**attempt))

    def delay_after_status(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying after `response`, or None to give up."""
        if attempt >= self.max_retries or response.status_code not in RETRY_STATUSES:
            return None
        hinted = retry_after_seconds(response.headers.get("retry-after"))
        if hinted is None:
            return self.backoff_delay(attempt)
        return min(self.max_delay, hinted)

    def delay_after_error(self, attempt: int, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before retrying after a transport error, or None to give up."""
        if attempt >= self.max_retries or not isinstance(exc, RETRY_TRANSPORT_ERRORS):
            return None
        return self.backoff_delay(attempt)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (delay seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
