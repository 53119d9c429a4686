"""Inference engines behind one small async interface (`Engine`)."""

from server.engines.base import CandidateUpdate, Engine, EngineError, EngineInputError, SamplingSpec

__all__ = ["CandidateUpdate", "Engine", "EngineError", "EngineInputError", "SamplingSpec"]
