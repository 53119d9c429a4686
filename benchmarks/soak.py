"""Soak test (not in CI): thousands of mixed requests at high concurrency, some clients hanging up.

3000 requests at concurrency 16 by default, a mix of every strategy, streaming, legacy
completions, bad input (which must be a 400), answer patterns that would make a backtracking
regex engine run for ever (which must be answered) or that use features a linear-time engine
refuses (which must be a 400), and clients that disconnect early, waiting or mid-stream (which
must leave no candidate running). Half way through, the engine core process is killed with
SIGKILL: the server must restart it by itself. Requests in flight at the kill must end with 503
(or a stream's error event) at once, not hang; new requests wait until /health is 200 again and
must then succeed like any other. The server's resident memory is sampled every few seconds
(soak_memory.py): after warm-up it must stay flat. Reports errors by kind, latency percentiles,
the memory growth and a plot of it, then checks the server still serves.

    python -m benchmarks.soak                      # starts its own server
    python -m benchmarks.soak --url http://127.0.0.1:8000 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
from tqdm import tqdm

from benchmarks.common.environment import machine
from benchmarks.common.servers import whetstone_command
from benchmarks.soak_memory import Growth, RssSample, RssSampler, growth, plot_rss
from clients import AsyncWhetstoneClient, WhetstoneError
from clients.pool import run_closed_loop
from clients.processes import free_port, spawned_process
from clients.stats import percentile

PROMPTS = (
    "What is 6 times 7?",
    "Name a famous painter.",
    "Write one sentence about rain.",
    "What is the capital of Japan?",
    "Give me a synonym for happy.",
)
# name -> (share of requests, request fields); "disconnect" requests give up after 0.3 s
MIX: dict[str, tuple[float, dict[str, Any]]] = {
    "best_of_4": (0.25, {"sharpening": {"n": 4}}),
    "greedy_stream": (0.15, {"temperature": 0.0, "stream": True, "sharpening": {"strategy": "none"}}),
    "best_of_4_stream": (0.05, {"stream": True, "sharpening": {"n": 4}}),
    "majority": (0.08, {"sharpening": {"strategy": "majority", "n": 4, "answer_pattern": r"(\d+)"}}),
    "smc": (0.04, {"sharpening": {"strategy": "smc", "n": 4, "alpha": 4.0, "checkpoint_tokens": 8}}),
    "mcmc": (0.03, {"sharpening": {"strategy": "mcmc", "alpha": 4.0, "blocks": 2, "mh_steps": 1}}),
    "confidence": (
        0.04,
        {"sharpening": {"strategy": "confidence", "n": 4, "warmup": 2, "answer_pattern": r"(\d+)"}},
    ),
    "power": (0.07, {"sharpening": {"strategy": "power", "n": 4, "alpha": 4.0}}),
    "rejection": (0.07, {"sharpening": {"strategy": "rejection", "n": 8, "threshold": -15.0}}),
    "legacy_best_of": (0.08, {"best_of": 3}),
    "bad_input": (0.08, {"temperature": 7.5}),
    "pathological_pattern": (
        0.04,
        {"sharpening": {"strategy": "majority", "n": 4, "answer_pattern": r"^(\w+\s?)*$"}},
    ),
    "refused_pattern": (0.03, {"sharpening": {"strategy": "majority", "answer_pattern": r"(\w+) \1"}}),
    "disconnect": (0.15, {"max_tokens": 400, "sharpening": {"n": 8, "prune": False}}),
    "stream_disconnect": (0.05, {"max_tokens": 400, "sharpening": {"n": 8, "prune": False}}),
}
# kind -> (the client error it must end with, how the report names it); other kinds must succeed
EXPECTED_ERRORS = {
    "bad_input": ("http_400", "expected_400"),
    "refused_pattern": ("http_400", "expected_400"),
    "disconnect": ("timeout", "disconnected"),
}
STREAM_DISCONNECT = "stream_disconnect"  # hangs up after the stream's first candidate event
DISCONNECT_AFTER = 0.3
WARM_UP_SHARE = 0.1  # memory growth is measured from the end of this share of the requests on
SAMPLE_EVERY = 5.0  # seconds between memory samples
SETTLE_SECONDS = 30.0  # after the engine is back, memory is compared from this much later on


@dataclass(frozen=True)
class Outcome:
    """How one request went."""

    kind: str
    result: str  # ok | expected_400 | disconnected | restart_window | unexpected:<error kind, or 200>
    latency: float
    ended: float = 0.0  # time.monotonic() when it ended


@dataclass
class EngineKill:
    """When the engine core was killed and when /health was 200 again."""

    killed: float | None = None
    healed: float | None = None
    serving: asyncio.Event = field(default_factory=asyncio.Event)  # clear while the engine is down

    def excuses(self, outcome: Outcome) -> bool:
        """A 503, or a stream ended by an error event, while the engine was being replaced."""
        if self.killed is None or outcome.result not in ("unexpected:http_503", "unexpected:stream_error"):
            return False
        healed = self.healed if self.healed is not None else float("inf")
        return self.killed <= outcome.ended <= healed + 1.0


async def one_request(client: AsyncWhetstoneClient, kind: str, index: int) -> Outcome:
    """Send one request of the given kind and classify what came back."""
    fields = dict(MIX[kind][1])
    prompt = PROMPTS[index % len(PROMPTS)]
    expected_error, expected_result = EXPECTED_ERRORS.get(kind, (None, "ok"))
    started = time.perf_counter()
    try:
        if kind == STREAM_DISCONNECT:
            await hang_up_mid_stream(client, prompt, fields)
            expected_result = "disconnected"
        elif kind == "legacy_best_of":
            await client.complete(prompt, max_tokens=24, **fields)
        else:
            await client.chat([{"role": "user", "content": prompt}], **({"max_tokens": 24} | fields))
        result = expected_result if expected_error is None else "unexpected:200"
    except WhetstoneError as exc:
        result = expected_result if exc.kind == expected_error else f"unexpected:{exc.kind}"
    return Outcome(kind, result, time.perf_counter() - started, time.monotonic())


async def hang_up_mid_stream(client: AsyncWhetstoneClient, prompt: str, fields: dict[str, Any]) -> None:
    """Stream a chat completion with candidate events and close the connection at the first one."""
    events = cast(AsyncGenerator[Any], client.watch_chat([{"role": "user", "content": prompt}], **fields))
    async with aclosing(events):
        async for _ in events:
            return
    raise WhetstoneError("the stream ended before its first event")


def engine_core_pid(pgid: int) -> int | None:
    """The vLLM engine-core process in the server's process group."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{pid}/comm").read_text()
            if os.getpgid(int(pid)) == pgid and name.startswith("VLLM::EngineCor"):
                return int(pid)
        except (OSError, ProcessLookupError):
            continue
    return None


async def kill_engine_when(url: str, pgid: int, ready: asyncio.Event, kill: EngineKill) -> None:
    """Once `ready` is set, SIGKILL the engine core; then wait until /health is 200 again."""
    await ready.wait()
    pid = engine_core_pid(pgid)
    if pid is None:
        raise RuntimeError("no engine core process found to kill")
    kill.serving.clear()  # hold new requests back until the engine is back
    os.kill(pid, signal.SIGKILL)
    kill.killed = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            await asyncio.sleep(0.5)
            try:
                if (await client.get("/health")).status_code == 200:
                    kill.healed = time.monotonic()
                    kill.serving.set()
                    return
            except httpx.HTTPError:
                continue


async def soak(
    url: str, requests: int, concurrency: int, seed: int, kill_at: float = 0.0, pgid: int | None = None
) -> tuple[list[Outcome], EngineKill]:
    """Run the mix with `concurrency` requests in flight (the disconnecting ones give up early).

    With `kill_at` > 0 and the server's process group, the engine core is killed once that
    share of the requests has ended.
    """
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=[share for share, _ in MIX.values()], k=requests)
    bar = tqdm(total=requests, desc="soak", unit="req")
    kill, ready = EngineKill(), asyncio.Event()
    kill.serving.set()
    killer = None
    if kill_at > 0 and pgid is not None:
        killer = asyncio.create_task(kill_engine_when(url, pgid, ready, kill))

    def done(_: Outcome) -> None:
        bar.update(1)
        if bar.n >= kill_at * requests:
            ready.set()

    async with (
        AsyncWhetstoneClient(url, timeout=300.0, max_retries=3) as patient,
        AsyncWhetstoneClient(url, timeout=DISCONNECT_AFTER, max_retries=3) as impatient,
    ):

        def job(i: int, kind: str) -> Callable[[float], Awaitable[Outcome]]:
            client = impatient if kind == "disconnect" else patient
            async def send(_due: float) -> Outcome:
                await kill.serving.wait()
                return await one_request(client, kind, i)

            return send

        jobs = [job(i, kind) for i, kind in enumerate(kinds)]
        outcomes = await run_closed_loop(jobs, concurrency, on_done=done)
    bar.close()
    if killer is not None:
        await killer
    return [replace(o, result="restart_window") if kill.excuses(o) else o for o in outcomes], kill


def server_state(url: str) -> dict[str, Any]:
    """Health and the in-flight gauges after the run (candidates must be 0)."""
    metrics = httpx.get(f"{url}/metrics").text
    gauges = {
        name: float(m.group(1))
        for name in ("whetstone_inflight_candidates", "whetstone_inflight_requests")
        if (m := re.search(rf"^{name} (\S+)$", metrics, re.M))
    }
    return {"health": httpx.get(f"{url}/health").status_code} | gauges


def memory_lines(
    memory: Growth | None, samples: list[RssSample], kill: EngineKill, warm_from: float
) -> list[str]:
    """The report's memory findings: growth after warm-up, and around the engine restart."""
    if memory is None:
        return ["- memory: not measured (external server)"]
    lines = [
        f"- memory after warm-up (first {WARM_UP_SHARE:.0%} of the requests) to the end, "
        f"{len(samples)} samples every {SAMPLE_EVERY:.0f} s: HTTP server process "
        f"{memory.server_start:.0f} -> {memory.server_end:.0f} MiB (**{memory.server_percent:+.1f}%**), "
        f"server and engine processes {memory.group_start:.0f} -> {memory.group_end:.0f} MiB "
        f"(**{memory.group_percent:+.1f}%**); plot: soak_rss.png",
    ]
    if kill.killed is not None and kill.healed is not None:
        settled = kill.healed + SETTLE_SECONDS  # the new engine has served for a while
        before = [s for s in samples if s.at < kill.killed]
        after = [s for s in samples if s.at > settled]
        if before and after:
            lines.append(
                f"- across the engine restart: HTTP server process {before[-1].server_mib:.0f} -> "
                f"{after[0].server_mib:.0f} MiB, all processes {before[-1].group_mib:.0f} -> "
                f"{after[0].group_mib:.0f} MiB (the last sample before the kill, the first one "
                f"{SETTLE_SECONDS:.0f} s after /health was 200 again)"
            )
            lines.append(phase_line("from warm-up to the kill", growth(before, warm_from)))
            restarted = f"from {SETTLE_SECONDS:.0f} s after the restart on"
            lines.append(phase_line(restarted, growth(after, settled)))
    return lines


def phase_line(name: str, memory: Growth) -> str:
    """One phase's growth, for the report."""
    return (f"- {name}: HTTP server process {memory.server_start:.0f} -> {memory.server_end:.0f} MiB "
            f"({memory.server_percent:+.1f}%), all processes {memory.group_start:.0f} -> "
            f"{memory.group_end:.0f} MiB ({memory.group_percent:+.1f}%)")


def report(
    outcomes: list[Outcome],
    state: dict[str, Any],
    memory: Growth | None,
    samples: list[RssSample],
    warm_from: float,
    args: argparse.Namespace,
    wall: float,
    kill: EngineKill,
) -> str:
    """The markdown report."""
    ok = [o.latency for o in outcomes if o.result == "ok"]
    results = Counter(o.result for o in outcomes)
    by_kind = Counter((o.kind, o.result) for o in outcomes)
    unexpected = sum(n for r, n in results.items() if r.startswith("unexpected"))
    lines = [
        "# Soak test",
        "",
        f"Machine: {machine()}; embedded SmolLM2-135M-Instruct on the vLLM CPU build, "
        f"{'an external server' if args.url else 'eager' if args.enforce_eager else 'compiled'} mode. "
        f"{len(outcomes)} requests at concurrency {args.concurrency}, max_tokens 24 (400 for the "
        f"disconnecting ones, which hang up after 0.3 s or at a stream's first event), "
        f"run took {wall / 60:.1f} min. Re-run: `make soak`.",
        "",
        f"- unexpected errors: **{unexpected}** (any 5xx outside the restart window, a 4xx where a "
        "200 was due, a 200 where a 400 was due, or a request that hung past the client's timeout)",
        f"- engine core killed with SIGKILL after {args.kill_at:.0%} of the requests; /health was 200 "
        f"again {kill.healed - kill.killed:.1f} s later (the server restarted it by itself); the "
        f"{results['restart_window']} requests in flight at the kill ended with 503 (streams: an error "
        "event, then [DONE]); new requests were held back until /health was 200, then served"
        if kill.killed is not None and kill.healed is not None
        else "- no engine kill in this run",
        f"- successful requests: {len(ok)}; latency p50 {percentile(ok, 50):.2f} s, "
        f"p99 {percentile(ok, 99):.2f} s"
        if ok
        else "- no successful request",
        f"- server after the run: /health {state.get('health')}, candidates in flight "
        f"{state.get('whetstone_inflight_candidates')}, requests in flight "
        f"{state.get('whetstone_inflight_requests')}",
        *memory_lines(memory, samples, kill, warm_from),
        "",
        "| kind | result | requests |",
        "|---|---|---|",
        *[f"| {kind} | {result} | {n} |" for (kind, result), n in sorted(by_kind.items())],
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="a running whetstone server (default: start one)")
    parser.add_argument("--requests", type=int, default=3000, help="requests in all")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.5,
        help="SIGKILL the engine core once this share of requests ended (0: never; own server only)",
    )
    parser.add_argument("--enforce-eager", action="store_true", help="start the server in eager mode")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the soak test; exit 1 on any unexpected error or leftover candidate."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    port = free_port()
    url = args.url or f"http://127.0.0.1:{port}"
    command = whetstone_command(port, enforce_eager=args.enforce_eager)
    server = nullcontext(None) if args.url else spawned_process(command, url, args.out / "soak_server.log")
    began = time.monotonic()
    with server as process:
        sampler = RssSampler(process.pid, SAMPLE_EVERY) if process is not None else nullcontext(None)
        with sampler as watch:
            asyncio.run(soak(url, 16, 8, seed=args.seed + 1))  # warm-up
            pgid = None if process is None else process.pid  # the server leads its own process group
            outcomes, kill = asyncio.run(
                soak(url, args.requests, args.concurrency, args.seed, args.kill_at, pgid)
            )
            time.sleep(2)
            state = server_state(url)
    samples = watch.samples if watch is not None else []
    warm_from = sorted(o.ended for o in outcomes)[int(WARM_UP_SHARE * len(outcomes))]
    memory = growth(samples, warm_from) if samples else None
    text = report(outcomes, state, memory, samples, warm_from, args, time.perf_counter() - started, kill)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(text)
    (args.out / "soak.json").write_text(json.dumps(
        {"outcomes": [o.__dict__ for o in outcomes], "rss": [s.__dict__ for s in samples],
         "started": began, "warm_from": warm_from, "killed": kill.killed, "healed": kill.healed},
        indent=1,
    ))
    if samples:
        marks = {"engine killed": kill.killed, "engine back": kill.healed}
        plot_rss(samples, began, {k: v for k, v in marks.items() if v is not None}, warm_from,
                 args.out / "soak_rss.png")
    print(text)
    bad = any(o.result.startswith("unexpected") for o in outcomes)
    return 1 if bad or state.get("whetstone_inflight_candidates") else 0


if __name__ == "__main__":
    raise SystemExit(main())
