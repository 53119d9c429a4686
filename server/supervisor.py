"""Keeps the engine serving: notices when it dies, restarts it within limits, or gives up.

While the engine is down every request gets 503 at once (the service checks the engine's
health before it admits a request, and requests in flight fail with the engine). The
supervisor replaces the dead engine in-process, with back-off; after too many restarts in a
window it gives up, so that the process exits non-zero and an outside supervisor takes over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from server.engines import Engine, ReportsUpstreams
from server.errors import EngineUnavailable
from server.metrics import Metrics

logger = logging.getLogger(__name__)
CHECK_SECONDS = 0.25
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
EngineState = Literal["serving", "restarting", "failed"]


class RestartBudget:
    """At most `limit` restarts in any `window` seconds."""

    def __init__(
        self,
        limit: int,
        window: float,
        first_backoff: float = FIRST_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.first_backoff = first_backoff
        self.clock = clock
        self.recent: deque[float] = deque()

    def take(self) -> bool:
        """Use one restart if the window has room for it."""
        now = self.clock()
        while self.recent and now - self.recent[0] > self.window:
            self.recent.popleft()
        if len(self.recent) >= self.limit:
            return False
        self.recent.append(now)
        return True

    def backoff(self) -> float:
        """Seconds to wait before the next restart: doubling with each recent restart."""
        return min(self.first_backoff * 2 ** max(len(self.recent) - 1, 0), MAX_BACKOFF_SECONDS)


class EngineSupervisor:
    """Watches one engine and restarts it (policy `restart`) or gives up (policy `exit`)."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        policy: Literal["restart", "exit"] = "restart",
        budget: RestartBudget | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.policy = policy
        self.budget = budget or RestartBudget(3, 600.0)
        self.state: EngineState = "serving"
        self.reason: str | None = None
        self.on_give_up: Callable[[], None] = lambda: None

    @property
    def gave_up(self) -> bool:
        """True once the engine failed for good."""
        return self.state == "failed"

    def describe(self) -> str:
        """Why the engine is not serving, for /health and 503 messages."""
        if self.state == "restarting":
            return f"the engine is restarting after it failed ({self.reason}); retry shortly"
        if self.state == "failed":
            return f"the engine failed and will not be restarted ({self.reason})"
        return "the engine is not serving"

    def health(self) -> dict[str, Any]:
        """What /health reports of the engine (in upstream mode, each upstream's state);
        EngineUnavailable (503) with the reason while it is not serving."""
        detail: dict[str, Any] = {}
        if isinstance(self.engine, ReportsUpstreams):
            detail["upstreams"] = [asdict(u) for u in self.engine.upstream_status()]
        if not self.engine.is_healthy():
            upstreams = f"; upstreams: {detail['upstreams']}" if detail else ""
            raise EngineUnavailable(self.describe() + upstreams, code=f"engine_{self.state}")
        return detail

    async def watch(self) -> None:
        """Run until the engine fails for good (or the task is cancelled at shutdown)."""
        while not self.gave_up:
            await asyncio.sleep(CHECK_SECONDS)
            if not self.engine.is_healthy():
                await self.recover("the engine stopped serving (its process died or crashed)")

    async def recover(self, reason: str) -> None:
        """Replace a dead engine, retrying with back-off, or give up."""
        self.reason = reason
        logger.error("engine failure: %s", reason)
        while True:
            await self._release()  # also fails candidate streams still waiting on the dead engine
            if self.policy == "exit" or not self.budget.take():
                self._give_up()
                return
            self.state = "restarting"
            delay = self.budget.backoff()
            logger.warning("restarting the engine in %.1f s", delay)
            await asyncio.sleep(delay)
            try:
                await self.engine.start()
            except Exception as exc:
                logger.exception("engine restart failed")
                self.reason = f"restart failed: {exc}"
                continue
            self.metrics.engine_restarts.inc()
            if self.engine.is_healthy():
                logger.warning("engine restarted and serving")
                self.state, self.reason = "serving", None
                return

    async def _release(self) -> None:
        try:
            await self.engine.shutdown()
        except Exception:
            logger.exception("shutting down the dead engine failed")

    def _give_up(self) -> None:
        self.state = "failed"
        logger.critical("giving up on the engine: %s", self.reason)
        self.on_give_up()
