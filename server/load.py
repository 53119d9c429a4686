"""Load-aware sharpening: a request's extra candidates run on the engine's spare capacity only.

Every request has one primary candidate (its first draw: the greedy one by default), which is
always served, and may have extras (every later draw). A request under the `spare` policy:
- starts only as many extras as the engine has room for (`LoadPolicy.extras_allowed`),
- gives up extras it is still running when a newer request's primary needs their room
  (`stopped_by: "load"`),
- waits for its extras at most `deadline` times the time its primary took, once the primary
  has ended (`stopped_by: "deadline"`).
A request under `wait` draws every candidate it asks for; its sequences still count as load.
Extras cut short are aborted like pruned candidates and are never selected, so selection among
the candidates that ran is exactly the strategy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.sharpening.config import LoadMode


@dataclass(frozen=True)
class LoadPolicy:
    """How much spare capacity the engine has, and how long a request waits for its extras."""

    capacity: int  # sequences the engine runs side by side before one more slows the others
    deadline: float  # extras may run this fraction of the primary's time past the primary's end

    def extras_allowed(self, wanted: int, busy: int) -> int:
        """Extras a request may start while `busy` sequences (its own primary included) run."""
        return max(0, min(wanted, self.capacity - busy))

    def excess(self, busy: int) -> int:
        """Sequences beyond capacity: how many cuttable extras a newly started primary displaces."""
        return max(0, busy - self.capacity)

    def grace(self, primary_seconds: float) -> float:
        """Seconds a request still waits for its extras once its primary has ended."""
        return self.deadline * primary_seconds


CutExtras = Callable[[int, str], int]  # (at most how many, why) -> how many were cut


class LoadGovernor:
    """Server-wide: counts the sequences in flight and shares the spare capacity among requests.

    `engine_busy` (optional) reports sequences the engine runs for others (an upstream's own
    running and waiting requests); the larger of it and whetstone's own count is the load.
    """

    def __init__(self, policy: LoadPolicy, engine_busy: Callable[[], int] | None = None) -> None:
        self.policy = policy
        self.engine_busy = engine_busy
        self.running = 0  # whetstone's sequences in the engine now, primaries and extras
        self._tickets: list[LoadTicket] = []  # open requests, oldest first

    def busy(self) -> int:
        """Sequences the engine is running or holding now."""
        reported = self.engine_busy() if self.engine_busy is not None else 0
        return max(self.running, reported)

    def ticket(self, mode: LoadMode, cut: CutExtras) -> LoadTicket:
        """A request's handle on the load; `cut(k, why)` stops up to k of its running extras."""
        ticket = LoadTicket(self, mode, cut)
        self._tickets.append(ticket)
        return ticket

    def _make_room(self) -> int:
        """Cut the extras of the newest `spare` requests until the load is back to capacity."""
        need, cut = self.policy.excess(self.busy()), 0
        for ticket in reversed(self._tickets):
            if cut >= need:
                break
            if ticket.mode == "spare" and ticket.extras_running:
                cut += ticket.cut(need - cut, "load")
        return cut

    def _close(self, ticket: LoadTicket) -> None:
        self._tickets.remove(ticket)


class LoadTicket:
    """One request's share of the load: its primary always runs; its extras as the policy allows."""

    def __init__(self, governor: LoadGovernor, mode: LoadMode, cut: CutExtras) -> None:
        self.governor = governor
        self.mode = mode
        self.cut = cut
        self.extras_running = 0

    @property
    def spare(self) -> bool:
        """True when this request's extras use spare capacity only."""
        return self.mode == "spare"

    def primary_started(self) -> int:
        """Count the primary in; make room for it by cutting newer requests' extras (how many)."""
        self.governor.running += 1
        return self.governor._make_room()

    def admit_extras(self, wanted: int) -> int:
        """How many of `wanted` extras may start now (all of them under `wait`); they count as load."""
        policy, busy = self.governor.policy, self.governor.busy()
        allowed = policy.extras_allowed(wanted, busy) if self.spare else wanted
        self.governor.running += allowed
        self.extras_running += allowed
        return allowed

    def ended(self, primary: bool) -> None:
        """A sequence of this request left the engine."""
        self.governor.running -= 1
        if not primary:
            self.extras_running -= 1

    def close(self) -> None:
        """The request is over."""
        self.governor._close(self)
