"""Adaptive stopping against drawing every candidate: accuracy, generated tokens and latency per way."""
