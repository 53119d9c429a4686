"""Inference engines behind one small async interface (`Engine`)."""

from server.engines.base import (
    CandidateUpdate,
    Engine,
    EngineError,
    EngineInputError,
    ReportsUpstreams,
    SamplingSpec,
    UpstreamStatus,
)

__all__ = [
    "CandidateUpdate",
    "Engine",
    "EngineError",
    "EngineInputError",
    "ReportsUpstreams",
    "SamplingSpec",
    "UpstreamStatus",
]
