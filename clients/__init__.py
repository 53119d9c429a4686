"""Clients for a whetstone server: an httpx library, a load generator, an A/B comparer, a server spawner."""

from clients.client import AsyncWhetstoneClient, WhetstoneClient
from clients.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailed,
    InternalServerError,
    InvalidResponse,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServiceUnavailableError,
    StreamError,
    WhetstoneError,
)
from clients.results import Candidate, Completion, Model, Sharpening, Usage
from clients.sse import CandidateEvent

__all__ = [
    "APIError",
    "APIStatusError",
    "AsyncWhetstoneClient",
    "AuthenticationError",
    "BadRequestError",
    "Candidate",
    "CandidateEvent",
    "Completion",
    "ConnectionFailed",
    "InternalServerError",
    "InvalidResponse",
    "Model",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeout",
    "ServiceUnavailableError",
    "Sharpening",
    "StreamError",
    "Usage",
    "WhetstoneClient",
    "WhetstoneError",
]
