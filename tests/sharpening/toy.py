"""A toy language model whose pi^alpha over whole sequences is computable, served as an Engine.

Tokens are `a` (3) and `b` (4) and end-of-sequence (2); the next-token distribution depends
on the previous token, and the third token is always followed by the end. The engine reports
the full distribution as the top-k, so tempered normalisers are exact here.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.engines import CandidateUpdate, SamplingSpec
from server.sharpening import TokenLogprob

EOS, A, B = 2, 3, 4
TEXT = {EOS: "", A: "a", B: "b"}
LONGEST = 3  # tokens before the forced end
# next-token probabilities of (a, b, end) after: the start, a, b
Table = dict[int | None, tuple[float, float, float]]
TABLE: Table = {None: (0.55, 0.35, 0.10), A: (0.30, 0.30, 0.40), B: (0.15, 0.50, 0.35)}


def next_distribution(prefix: Sequence[int], table: Table = TABLE) -> dict[int, float]:
    """p(next token | prefix) of the toy model (or of another `table`)."""
    if len(prefix) >= LONGEST:
        return {EOS: 1.0}
    pa, pb, pe = table[prefix[-1] if prefix else None]
    return {A: pa, B: pb, EOS: pe}


def sequences() -> list[tuple[int, ...]]:
    """Every complete sequence (ending with EOS)."""
    found = []
    for length in range(LONGEST + 1):
        for body in itertools.product((A, B), repeat=length):
            found.append((*body, EOS))
    return found


def probability(sequence: Sequence[int], table: Table = TABLE) -> float:
    """pi(sequence) under the toy model (or another `table`)."""
    return math.prod(next_distribution(sequence[:i], table)[t] for i, t in enumerate(sequence))


def power_distribution(alpha: float) -> dict[tuple[int, ...], float]:
    """pi^alpha / Z over every complete sequence."""
    weights = {s: probability(s) ** alpha for s in sequences()}
    total = sum(weights.values())
    return {s: w / total for s, w in weights.items()}


@dataclass
class ToyEngine:
    """Serves the toy model: a fork's prefix is read from the end of its prompt; temperature 0 is greedy."""

    model_name: str = "toy"
    max_model_len: int = 64
    requests: int = 0
    aborted: set[str] = field(default_factory=set)
    table: Table = field(default_factory=lambda: TABLE)

    async def start(self) -> None:
        """Nothing to load."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    def is_healthy(self) -> bool:
        return True

    async def encode_chat(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [100]

    async def encode(self, text: str) -> list[int]:
        return [100]

    async def stream_candidate(
        self, prompt_token_ids: list[int], sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[CandidateUpdate]:
        self.requests += 1
        prefix = list(itertools.takewhile(lambda t: t in TEXT, reversed(prompt_token_ids)))[::-1]
        rng = random.Random(f"{sampling.seed}/{request_id}")
        for generated in range(1, sampling.max_tokens + 1):
            await asyncio.sleep(0)
            if request_id in self.aborted:
                yield CandidateUpdate(finish_reason="abort", finished=True)
                return
            dist = next_distribution(prefix, self.table)
            ids = list(dist)
            if sampling.temperature == 0.0:
                token = max(ids, key=dist.__getitem__)
            else:
                token = rng.choices(ids, weights=[dist[t] ** (1.0 / sampling.temperature) for t in ids])[0]
            prefix.append(token)
            top = tuple(sorted(((TEXT[t], math.log(p)) for t, p in dist.items()), key=lambda x: -x[1]))
            logprob = math.log(dist[token])
            ends = token == EOS or generated == sampling.max_tokens
            yield CandidateUpdate(
                token_ids=[token],
                logprobs=[logprob],
                text=TEXT[token],
                tokens=[TokenLogprob(TEXT[token], logprob, top[: sampling.top_logprobs])],
                finish_reason=("stop" if token == EOS else "length") if ends else None,
                finished=ends,
            )
            if ends:
                return

    async def abort(self, request_ids: Sequence[str]) -> None:
        self.aborted.update(request_ids)
