"""Capacity benchmark: latency against offered load for greedy, the default and vLLM's own server.

Four ways answer the load generator's built-in chat prompts with the same max_tokens:

  greedy          whetstone, `"temperature": 0, "sharpening": {"strategy": "none"}`
  default         whetstone with nothing sent: greedy + 7 candidates at 0.4 under the `spare` load
                  policy (what ships)
  full            whetstone, `"sharpening": {"load": "wait"}`: the same candidates, always all drawn
                  (the default before the load policy)
  vllm_greedy     vLLM's own OpenAI server, temperature 0, started with whetstone's CPU engine
                  settings (what an operator would run instead)

Every way is measured closed loop at each --concurrency for --seconds (3x as long one request at
a time; the whetstone ways one after another at each level, so they share the machine's state)
and open loop at each --rates (Poisson arrivals, requests/s). Per row: requests/s, p50/p90/p99
latency, generated tokens/s, the answers' median raw log-likelihood and how far each request was
sharpened. The whetstone server and vLLM's server run one after the other, never together.
Writes capacity.json, capacity.md and capacity.png under --out.

    python -m benchmarks.capacity                                   # the committed run
    python -m benchmarks.capacity --enforce-eager --seconds 5 --concurrency 1 2 --rates 0.5 \\
        --out /tmp/capacity-smoke                                    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.capacity.report import Row, other_failures, write_report
from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import (
    WHETSTONE_CPU_ENV,
    WHETSTONE_CPU_FLAGS,
    prepared_model_dir,
    vllm_command,
    whetstone_command,
)
from clients.pool import gaps, run_closed_loop, run_open_loop
from clients.processes import free_port, spawned
from clients.prompts import LOAD_PROMPTS
from server.precision import detect_precision

log = logging.getLogger("benchmarks.capacity")

WHETSTONE_WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "default": {},
    "full": {"sharpening": {"load": "wait"}},
}
VLLM_WAY = "vllm_greedy"
REQUEST_TIMEOUT = 600.0
ALONE_LONGER = 3  # one request at a time answers few requests per second: its rows run this much longer


@dataclass(frozen=True)
class Answer:
    """One answered request as the benchmark sees it."""

    way: str
    loop: str  # closed or open
    level: float  # concurrency (closed) or requests/s offered (open)
    prompt: int
    latency: float
    generated_tokens: int
    logprob_sum: float | None
    candidates_ran: int  # candidates that ran to their end or were pruned on score (1: greedy only)
    stopped_by: str | None


Ask = Callable[[int], Awaitable[tuple[int, float | None, int, str | None]]]


def whetstone_asker(http: httpx.AsyncClient, fields: dict[str, Any], max_tokens: int) -> Ask:
    """Ask whetstone one built-in prompt: (generated tokens, log-likelihood, candidates ran, stopped_by)."""

    async def ask(prompt: int) -> tuple[int, float | None, int, str | None]:
        body = {"messages": [{"role": "user", "content": LOAD_PROMPTS[prompt]}], "max_tokens": max_tokens}
        response = await http.post("/v1/chat/completions", json=body | fields)
        response.raise_for_status()
        reply = response.json()
        summary = reply["sharpening"]
        ran = summary["candidates_drawn"] - summary.get("candidates_cut", 0)
        return (reply["usage"]["completion_tokens"], summary["selected_logprob_sum"], ran,
                summary["stopped_by"])

    return ask


def vllm_asker(http: httpx.AsyncClient, model: str, max_tokens: int) -> Ask:
    """Ask vLLM's server for a greedy answer with its tokens' raw log-probabilities."""

    async def ask(prompt: int) -> tuple[int, float | None, int, str | None]:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": LOAD_PROMPTS[prompt]}],
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "logprobs": True,
        }
        response = await http.post("/v1/chat/completions", json=body)
        response.raise_for_status()
        reply = response.json()
        tokens = reply["choices"][0]["logprobs"]["content"]
        return reply["usage"]["completion_tokens"], sum(t["logprob"] for t in tokens), 1, None

    return ask


def jobs(way: str, loop: str, level: float, ask: Ask, rng: random.Random,
         answers: list[Answer], failures: list[str]) -> Iterator[Callable[[float], Awaitable[None]]]:
    """Endless jobs over the built-in prompts (shuffled); each appends its answer or its failure."""
    order = list(range(len(LOAD_PROMPTS)))
    rng.shuffle(order)
    for prompt in itertools.cycle(order):

        async def job(due: float, prompt: int = prompt) -> None:
            try:
                tokens, logprob_sum, ran, stopped_by = await ask(prompt)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                failures.append(f"{way} {loop} {level}: {exc!r}")
                return
            latency = time.perf_counter() - due  # an open loop's queueing counts
            answers.append(Answer(way, loop, level, prompt, latency, tokens, logprob_sum, ran, stopped_by))

        yield job


async def measure_row(way: str, ask: Ask, loop: str, level: float, seconds: float,
                      answers: list[Answer], failures: list[str]) -> Row:
    """One way at one concurrency (closed) or arrival rate (open) for `seconds`; its row."""
    got: list[Answer] = []
    work = jobs(way, loop, level, ask, random.Random(f"{loop}{level}"), got, failures)  # ways: same prompts
    started = time.perf_counter()
    deadline = started + seconds
    if loop == "closed":
        await run_closed_loop(work, int(level), deadline)
    else:
        await run_open_loop(work, gaps(level, "poisson", random.Random(7)), 256, deadline)
    wall = time.perf_counter() - started
    answers += got
    row = Row.of(way, loop, level, wall, got)
    log.info("%s", row.line())
    return row


async def measure_server(askers: dict[str, Ask], args: argparse.Namespace,
                         answers: list[Answer], failures: list[str]) -> list[Row]:
    """Warm each way up, then every closed-loop level and every open-loop rate, way after way."""
    for ask in askers.values():
        await asyncio.gather(*(ask(i) for i in range(4)))
    rows = []
    levels = [("closed", float(c)) for c in args.concurrency] + [("open", r) for r in args.rates]
    for loop, level in levels:
        seconds = args.seconds * (ALONE_LONGER if (loop, level) == ("closed", 1.0) else 1)
        for way, ask in askers.items():
            rows.append(await measure_row(way, ask, loop, level, seconds, answers, failures))
    return rows


def client(url: str) -> httpx.AsyncClient:
    """An HTTP client for one server, with room for every request the sweep keeps in flight."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    return httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits)


async def run_whetstone(args: argparse.Namespace, answers: list[Answer], failures: list[str]) -> list[Row]:
    """Start `whetstone serve` (defaults; compiled unless --enforce-eager) and measure its ways."""
    port = free_port()
    flags = ("--default-max-tokens", str(args.max_tokens), *args.serve_args.split())
    command = whetstone_command(port, flags, args.enforce_eager)
    with spawned(command, f"http://127.0.0.1:{port}", args.out / "whetstone.log") as url:
        async with client(url) as http:
            askers = {way: whetstone_asker(http, fields, args.max_tokens)
                      for way, fields in WHETSTONE_WAYS.items() if way in args.ways}
            rows = await measure_server(askers, args, answers, failures)
            (args.out / "whetstone_metrics.txt").write_text((await http.get("/metrics")).text)
            return rows


async def run_vllm(args: argparse.Namespace, answers: list[Answer], failures: list[str]) -> list[Row]:
    """Start vLLM's own server with whetstone's engine settings and measure greedy decoding on it."""
    port = free_port()
    model = prepared_model_dir()
    command = vllm_command(model, port, dtype=detect_precision().dtype, enforce_eager=args.enforce_eager,
                           flags=WHETSTONE_CPU_FLAGS)
    with spawned(command, f"http://127.0.0.1:{port}", args.out / "vllm.log", env=WHETSTONE_CPU_ENV) as url:
        async with client(url) as http:
            return await measure_server({VLLM_WAY: vllm_asker(http, model, args.max_tokens)},
                                        args, answers, failures)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64],
                        help="closed-loop levels: requests kept in flight (default: 1 4 8 16 32 64)")
    parser.add_argument("--rates", type=float, nargs="*", default=[1.0, 2.0, 4.0, 6.0],
                        help="open-loop Poisson arrival rates, requests/s (default: 1 2 4 6)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each row sends requests")
    parser.add_argument("--max-tokens", type=int, default=128, help="max_tokens of every request")
    parser.add_argument("--ways", nargs="+", default=[*WHETSTONE_WAYS, VLLM_WAY],
                        choices=[*WHETSTONE_WAYS, VLLM_WAY], help="which ways to measure (default: all)")
    parser.add_argument("--serve-args", default="",
                        help="extra flags for `whetstone serve`, e.g. '--load-deadline 0.5'")
    parser.add_argument("--enforce-eager", action="store_true",
                        help="start the servers without torch.compile")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/capacity"),
                        help="where the results go (default: benchmarks/results/capacity)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild capacity.md and capacity.png from capacity.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep (or rebuild its report) and write the results."""
    args = parse_args(argv)
    log_progress()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        write_report(args.out)
        return 0
    answers: list[Answer] = []
    failures: list[str] = []
    rows: list[Row] = []
    started = time.strftime("%Y-%m-%d %H:%M")
    if set(args.ways) & set(WHETSTONE_WAYS):
        rows += asyncio.run(run_whetstone(args, answers, failures))
    if VLLM_WAY in args.ways:
        rows += asyncio.run(run_vllm(args, answers, failures))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {
        "machine": machine(), "date": started, "settings": settings,
        "command": "python -m benchmarks.capacity " + " ".join(argv or []),
        "rows": [asdict(r) for r in rows], "answers": [asdict(a) for a in answers],
        "failures": failures,
    }
    write_report(args.out, result)
    return 1 if other_failures(result) else 0
