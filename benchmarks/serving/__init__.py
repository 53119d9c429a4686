"""The serving study, `python -m benchmarks.serving`: whetstone against vLLM's own OpenAI server
(n=8 + logprobs, the client picks the max), latency and throughput (run.py has the details)."""
