"""Pure A/B statistics: per-item outputs, verdicts, and per-side and head-to-head summaries."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from clients.results import Completion
from clients.stats import mean_or_none, wilson_interval

Verdict = Literal["a", "b", "tie"]
CHARS_PER_TOKEN = 4  # rough length estimate when the server returned no candidates
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Output:
    """One side's answer to one item: text, likelihood, length, cost and correctness."""

    text: str = ""
    selected_score: float | None = None
    logprob_sum: float | None = None
    num_tokens: int | None = None
    length_estimated: bool = False
    generated_tokens: int = 0
    latency: float = 0.0
    correct: bool | None = None
    error: str | None = None

    @property
    def log_likelihood(self) -> float | None:
        """The chosen answer's raw log-likelihood (its logprob_sum, else the selected score)."""
        return self.logprob_sum if self.logprob_sum is not None else self.selected_score


def estimate_tokens(text: str) -> int:
    """A token count guessed from the text's length."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def output_from(
    completion: Completion, answer: str | None, check: Callable[[str, str], bool]
) -> Output:
    """The Output of a completion; lengths are exact when the server reports them."""
    sharpening = completion.sharpening
    num_tokens = sharpening.selected_num_tokens if sharpening else None
    return Output(
        text=completion.text,
        selected_score=sharpening.selected_score if sharpening else None,
        logprob_sum=sharpening.selected_logprob_sum if sharpening else None,
        num_tokens=estimate_tokens(completion.text) if num_tokens is None else num_tokens,
        length_estimated=num_tokens is None,
        generated_tokens=completion.usage.completion_tokens if completion.usage else 0,
        latency=completion.latency,
        correct=None if answer is None else check(completion.text, answer),
    )


def judge(a: Output, b: Output) -> Verdict | None:
    """Who did better: by correctness when both were checked, else by log-likelihood.

    None when either side failed or has no log-likelihood to compare.
    """
    if a.error or b.error:
        return None
    if a.correct is not None and b.correct is not None:
        return "tie" if a.correct == b.correct else ("b" if b.correct else "a")
    la, lb = a.log_likelihood, b.log_likelihood
    if la is None or lb is None:
        return None
    if math.isclose(la, lb, rel_tol=0.0, abs_tol=TIE_TOLERANCE):
        return "tie"
    return "b" if lb > la else "a"


def summarize_side(outputs: Sequence[Output], confidence: float = 0.95) -> dict[str, Any]:
    """Accuracy with its Wilson interval, mean log-likelihood, length, cost and errors.

    Failed requests are counted under `errors` and left out of every other number.
    """
    ok = [o for o in outputs if o.error is None]
    checked = [o for o in ok if o.correct is not None]
    correct = sum(1 for o in checked if o.correct)
    low, high = wilson_interval(correct, len(checked), confidence) if checked else (None, None)
    lls = [o.log_likelihood for o in ok if o.log_likelihood is not None]
    return {
        "items": len(outputs),
        "errors": len(outputs) - len(ok),
        "checked": len(checked),
        "correct": correct,
        "accuracy": correct / len(checked) if checked else None,
        "ci_low": low,
        "ci_high": high,
        "mean_log_likelihood": mean_or_none(lls),
        "median_log_likelihood": statistics.median(lls) if lls else None,
        "mean_length": mean_or_none([o.num_tokens for o in ok if o.num_tokens is not None]),
        "lengths_estimated": sum(1 for o in ok if o.length_estimated),
        "mean_generated_tokens": mean_or_none([o.generated_tokens for o in ok]),
        "mean_latency": mean_or_none([o.latency for o in ok]),
    }


def head_to_head(a: Sequence[Output], b: Sequence[Output]) -> dict[str, int]:
    """Win/tie/loss of B against A over paired items, and how each item was decided."""
    counts = {"b_wins": 0, "ties": 0, "a_wins": 0, "undecided": 0,
              "by_correctness": 0, "by_log_likelihood": 0}
    keys: dict[Verdict | None, str] = {"b": "b_wins", "a": "a_wins", "tie": "ties",
                                       None: "undecided"}
    for left, right in zip(a, b, strict=True):
        verdict = judge(left, right)
        counts[keys[verdict]] += 1
        if verdict is not None:
            both_checked = left.correct is not None and right.correct is not None
            counts["by_correctness" if both_checked else "by_log_likelihood"] += 1
    return counts


def summarize(outputs: Mapping[str, Sequence[Output]], baseline: str) -> dict[str, Any]:
    """Every side's summary, and each other side's head-to-head record against `baseline`."""
    return {
        "baseline": baseline,
        "sides": {name: summarize_side(side) for name, side in outputs.items()},
        "versus_baseline": {
            name: head_to_head(outputs[baseline], side)
            for name, side in outputs.items()
            if name != baseline
        },
    }
