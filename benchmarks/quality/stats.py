"""Pure statistics of the quality benchmark: selection rules, sub-sampled N, Wilson intervals, lift.

Each item carries 32 graded samples drawn at temperature 1. A method of size N is simulated
by drawing many random N-subsets of those samples (all of them when there are few enough),
applying the selection rule to each subset and averaging; every method sees the same subsets.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clients.stats import wilson_interval
from server.sharpening import scoring

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal

GREEDY = "greedy"
SAMPLING = "sampling"
BEST_OF_N = "best_of_n"
BEST_OF_N_MEAN = "best_of_n_mean"
MAJORITY = "majority"
ORACLE = "oracle"
SELECTION_METHODS = (BEST_OF_N, BEST_OF_N_MEAN, MAJORITY, ORACLE)
METHOD_LABELS = {
    GREEDY: "greedy",
    SAMPLING: "sampling (N=1)",
    BEST_OF_N: "best-of-N, lp 0",
    BEST_OF_N_MEAN: "best-of-N, lp 1",
    MAJORITY: "majority vote",
    ORACLE: "pass@N (oracle)",
}


@dataclass(frozen=True)
class Sample:
    """One graded completion: its raw log-likelihood, length, status and extracted answer."""

    logprob_sum: float
    num_tokens: int
    finished: bool
    answer: str | None
    correct: bool

    def score(self, length_penalty: float) -> float:
        """The server's score: logprob_sum / num_tokens ** length_penalty."""
        return scoring.score(self.logprob_sum, self.num_tokens, length_penalty)


@dataclass(frozen=True)
class ItemSamples:
    """One benchmark item: its greedy completion and the samples drawn at temperature 1."""

    id: str
    greedy: Sample
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class MethodResult:
    """A method at one N over a task: accuracy with its 95% Wilson interval, chosen answers' means.

    `item_accuracy` holds each item's accuracy (averaged over its subsets), in item order.
    """

    method: str
    n: int
    items: int
    accuracy: float
    ci_low: float
    ci_high: float
    mean_logprob: float
    mean_tokens: float
    item_accuracy: tuple[float, ...]


Selector = Callable[[Sequence[Sample], Sequence[int]], int]


def lift_percent(accuracy: float, baseline: float) -> float | None:
    """The paper's lift: (accuracy - baseline) / baseline * 100; None when the baseline is 0."""
    if baseline <= 0:
        return None
    return (accuracy - baseline) / baseline * 100.0


def paired_difference(
    result: MethodResult, baseline: MethodResult, z: float = Z95
) -> tuple[float, float, float]:
    """Mean per-item accuracy difference from a baseline on the same items, with a 95% interval.

    A paired interval (normal approximation over items): much narrower than comparing two
    Wilson intervals, since both methods answer the same questions.
    """
    if len(result.item_accuracy) != len(baseline.item_accuracy):
        raise ValueError("paired results must cover the same items")
    differences = [a - b for a, b in zip(result.item_accuracy, baseline.item_accuracy, strict=True)]
    mean = statistics.fmean(differences)
    if len(differences) < 2:
        return mean, mean, mean
    half = z * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half


def rank_positions(samples: Sequence[Sample], length_penalty: float) -> list[int]:
    """Each sample's place in the server's order (0 = best): finished first, then score, then index."""
    order = sorted(
        range(len(samples)),
        key=lambda i: (not samples[i].finished, -samples[i].score(length_penalty), i),
    )
    positions = [0] * len(samples)
    for place, index in enumerate(order):
        positions[index] = place
    return positions


def best_of(positions: Sequence[int], subset: Sequence[int]) -> int:
    """The subset's best sample under a ranking given as positions (0 = best)."""
    return min(subset, key=positions.__getitem__)


def majority_of(samples: Sequence[Sample], positions: Sequence[int], subset: Sequence[int]) -> int:
    """The best-ranked sample among those giving the most frequent answer.

    Samples without an answer cast no vote; when none has one, the best-ranked sample wins
    (as the server's `majority` strategy does).
    """
    votes = Counter(samples[i].answer for i in subset if samples[i].answer is not None)
    if not votes:
        return best_of(positions, subset)
    top = max(votes.values())
    winners = [i for i in subset if samples[i].answer is not None and votes[samples[i].answer] == top]
    return best_of(positions, winners)


def oracle_of(samples: Sequence[Sample], positions: Sequence[int], subset: Sequence[int]) -> int:
    """A correct sample of the subset when there is one (pass@N), else the best-ranked one."""
    correct = [i for i in subset if samples[i].correct]
    return best_of(positions, correct or subset)


def subsets(pool: int, size: int, count: int, rng: random.Random) -> list[tuple[int, ...]]:
    """Every `size`-subset of range(pool) when there are at most `count`, else `count` random ones."""
    if not 1 <= size <= pool:
        raise ValueError(f"subset size {size} must lie in 1..{pool}")
    if math.comb(pool, size) <= count:
        return list(itertools.combinations(range(pool), size))
    return [tuple(sorted(rng.sample(range(pool), size))) for _ in range(count)]


def item_subsets(item: ItemSamples, n: int, count: int, seed: int) -> list[tuple[int, ...]]:
    """The item's N-subsets every method sees (the same for a given seed, item and N)."""
    return subsets(len(item.samples), n, count, random.Random(f"{seed}:{item.id}:{n}"))


def item_choices(
    item: ItemSamples, n: int, count: int, seed: int
) -> dict[str, list[Sample]]:
    """Per selection method, the sample it picks from each of the item's N-subsets."""
    samples = item.samples
    by_score = rank_positions(samples, 0.0)
    by_mean = rank_positions(samples, 1.0)
    chosen: dict[str, list[Sample]] = {method: [] for method in SELECTION_METHODS}
    for subset in item_subsets(item, n, count, seed):
        chosen[BEST_OF_N].append(samples[best_of(by_score, subset)])
        chosen[BEST_OF_N_MEAN].append(samples[best_of(by_mean, subset)])
        chosen[MAJORITY].append(samples[majority_of(samples, by_score, subset)])
        chosen[ORACLE].append(samples[oracle_of(samples, by_score, subset)])
    return chosen


def summarize(method: str, n: int, per_item: Sequence[Sequence[Sample]]) -> MethodResult:
    """Accuracy and means over items, each item's value averaged over its chosen samples."""
    if not per_item:
        raise ValueError("no items to summarize")
    item_accuracy = tuple(statistics.fmean(s.correct for s in chosen) for chosen in per_item)
    accuracy = statistics.fmean(item_accuracy)
    low, high = wilson_interval(accuracy * len(per_item), len(per_item))
    return MethodResult(
        method=method,
        n=n,
        items=len(per_item),
        accuracy=accuracy,
        ci_low=low,
        ci_high=high,
        mean_logprob=statistics.fmean(statistics.fmean(s.logprob_sum for s in c) for c in per_item),
        mean_tokens=statistics.fmean(statistics.fmean(s.num_tokens for s in c) for c in per_item),
        item_accuracy=item_accuracy,
    )


def evaluate(
    items: Sequence[ItemSamples], ns: Sequence[int], subset_count: int = 200, seed: int = 0
) -> list[MethodResult]:
    """Greedy, plain sampling (N=1) and every selection method at every N, over a task's items."""
    results = [summarize(GREEDY, 1, [[item.greedy] for item in items])]
    results.append(summarize(SAMPLING, 1, [item.samples for item in items]))
    for n in ns:
        per_method: dict[str, list[list[Sample]]] = {method: [] for method in SELECTION_METHODS}
        for item in items:
            for method, chosen in item_choices(item, n, subset_count, seed).items():
                per_method[method].append(chosen)
        results += [summarize(method, n, per_method[method]) for method in SELECTION_METHODS]
    return results


def ranking_auc(items: Sequence[ItemSamples], length_penalty: float) -> float | None:
    """How often a correct sample outscores an incorrect one of the same item (ties count half).

    Pooled over every (correct, incorrect) pair within an item; 0.5 means the score cannot tell
    right from wrong, 1.0 that it always prefers a right answer. None when no item has both.
    """
    wins = 0.0
    pairs = 0
    for item in items:
        right = [s.score(length_penalty) for s in item.samples if s.correct]
        wrong = [s.score(length_penalty) for s in item.samples if not s.correct]
        for r in right:
            wins += sum(1.0 if r > w else 0.5 if r == w else 0.0 for w in wrong)
        pairs += len(right) * len(wrong)
    return wins / pairs if pairs else None


def greedy_agreement(items: Sequence[ItemSamples], length_penalty: float) -> float | None:
    """How often best-of-all (every sample) gives the same answer as greedy decoding.

    Items where greedy gives no answer are left out; None when that leaves none.
    """
    same = [
        best == item.greedy.answer
        for item, best in zip(items, best_answers(items, length_penalty), strict=True)
        if item.greedy.answer is not None
    ]
    return statistics.fmean(same) if same else None


def top_answer_share(answers: Sequence[str | None]) -> tuple[str | None, float]:
    """The most frequent answer (None counts as one) and the share of answers that give it."""
    if not answers:
        raise ValueError("no answers")
    answer, count = Counter(answers).most_common(1)[0]
    return answer, count / len(answers)


def best_answers(items: Sequence[ItemSamples], length_penalty: float) -> list[str | None]:
    """Per item, the answer of its best-ranked sample among all of them."""
    return [
        item.samples[best_of(rank_positions(item.samples, length_penalty), range(len(item.samples)))].answer
        for item in items
    ]
