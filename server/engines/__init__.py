"""Inference engines behind one small async interface (`Engine`)."""

from server.engines.base import (
    CandidateUpdate,
    Engine,
    EngineError,
    EngineInputError,
    OutputConstraint,
    ParsedToolCalls,
    ReportsUpstreams,
    SamplingSpec,
    UpstreamStatus,
)

__all__ = [
    "CandidateUpdate",
    "Engine",
    "EngineError",
    "EngineInputError",
    "OutputConstraint",
    "ParsedToolCalls",
    "ReportsUpstreams",
    "SamplingSpec",
    "UpstreamStatus",
]
