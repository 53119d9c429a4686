"""The frontier report compares each answer with greedy's on the same prompt of the same set."""

from benchmarks.frontier.report import rows
from benchmarks.frontier.ways import Record


def record(way: str, prompt_set: str, prompt: int, logprob: float, latency: float = 1.0) -> Record:
    return Record(way, prompt_set, prompt, latency, logprob, 10, 10, "stop", "text")


def test_greedy_floor_is_per_set_and_prompt_when_sets_are_pooled() -> None:
    pooled = [
        record("greedy", "unseen", 0, -10.0), record("greedy", "fresh", 0, -30.0),
        record("default", "unseen", 0, -20.0, 0.5), record("default", "fresh", 0, -25.0, 0.5),
    ]
    greedy, default = rows(pooled)
    assert default.at_least_greedy == 1  # beats fresh's -30, not unseen's -10
    assert greedy.at_least_greedy is None
    assert default.latency_vs_greedy == 0.5
    assert default.median_logprob == -22.5
