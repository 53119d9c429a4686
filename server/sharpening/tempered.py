"""The tempered normaliser log sum_v p(v)^alpha of one next-token distribution, from its top-k.

Power-SMC's incremental weight and the Metropolis-Hastings acceptance ratio of power sampling
both reduce to this quantity when the proposal is the model at temperature 1/alpha (see
docs/design.md). The engine reports only the top-k raw log-probabilities l_1 >= ... >= l_k.
With S = sum_i exp(alpha * l_i) over the top k and the remaining mass R = 1 - sum_i exp(l_i),
every other token has p(v) <= exp(l_k), so p(v)^alpha <= p(v) * exp((alpha - 1) * l_k) for
alpha >= 1 and the tail adds between 0 and U = R * exp((alpha - 1) * l_k). Hence

    log S <= log Z <= log(S + U).

We return the estimate log(S + U/2), whose error is at most log(1 + U / (2 S)). When the top
k covers the whole vocabulary (R = 0), the value is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from server.sharpening.candidate import TokenLogprob


def log_normaliser(top: Sequence[float], alpha: float) -> tuple[float, float]:
    """(estimate of log sum_v p(v)^alpha, bound on its absolute error) from top-k raw log-probs."""
    if not top:
        raise ValueError("the tempered normaliser needs the top-k log-probabilities")
    known = math.fsum(math.exp(alpha * lp) for lp in top)
    rest = max(0.0, 1.0 - math.fsum(math.exp(lp) for lp in top))
    tail = rest * math.exp((alpha - 1.0) * min(top))
    return math.log(known + tail / 2), math.log1p(tail / (2 * known))


def token_log_normaliser(token: TokenLogprob, alpha: float) -> tuple[float, float]:
    """`log_normaliser` of the distribution `token` was drawn from (its `top` alternatives)."""
    return log_normaliser([lp for _, lp in token.top], alpha)
