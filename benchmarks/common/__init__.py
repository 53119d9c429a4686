"""Helpers every study shares: the task datasets, the machine description and progress log,
interleaved timing of request ways, and starting whetstone and vLLM servers."""
