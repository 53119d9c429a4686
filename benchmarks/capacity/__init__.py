"""Capacity: latency against offered load for greedy, the default and vLLM's own server."""
