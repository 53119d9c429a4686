"""whetstone: an OpenAI-compatible inference-time sharpening server."""

__version__ = "0.1.0"
