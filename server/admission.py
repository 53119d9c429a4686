"""Admission control: a cap on requests and candidates in flight; beyond it, 429."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import Overloaded


class Admission:
    """Counts requests and candidates in flight against the configured limits."""

    def __init__(self, max_requests: int, max_candidates: int) -> None:
        self.max_requests = max_requests
        self.max_candidates = max_candidates
        self.requests = 0
        self.candidates = 0

    def check(self, candidates: int) -> None:
        """Raise Overloaded (429) if a request drawing `candidates` would not fit right now."""
        if self.requests + 1 > self.max_requests:
            raise Overloaded(
                f"the server is serving its limit of {self.max_requests} requests; retry shortly"
            )
        if self.candidates + candidates > self.max_candidates and self.candidates > 0:
            raise Overloaded(
                f"{self.candidates} candidates are in flight (limit {self.max_candidates}); "
                "retry shortly or ask for fewer candidates"
            )

    @contextmanager
    def hold(self, candidates: int) -> Iterator[None]:
        """Admit a request for as long as the block runs."""
        self.check(candidates)
        self.requests += 1
        self.candidates += candidates
        try:
            yield
        finally:
            self.requests -= 1
            self.candidates -= candidates
