"""Serving benchmark: vLLM's own OpenAI server (n=8 + logprobs, pick the max) vs whetstone.

Six ways to answer the same chat prompts (the load generator's 24 built-in prompts) with the
same max_tokens, measured side by side in one run:

  vllm_n8_max       vLLM's own server asked for n=8 choices at temperature 1 with logprobs; the
                    client sums each choice's token log-probabilities and keeps the highest
                    (what a user would do without whetstone).
  vllm_n8_max_matched
                    the same against vLLM's server started with whetstone's CPU engine settings
                    (32-token KV blocks, whole-prompt prefills, every core computing): a control
                    that tells engine settings apart from selection with pruning.
  whetstone_default whetstone's shipped default: the request sends no `sharpening` and no
                    `temperature` (best_of_n, greedy + 7 candidates at 0.4, exact pruning, load
                    policy spare: extras only on spare capacity, deadline 0.5).
  whetstone_bo8     whetstone best_of_n, n=8, temperature 1, exact pruning on: the previous
                    default, like for like with vLLM's n=8 at temperature 1 (runs under `wait`).
  whetstone_greedy  whetstone strategy none, temperature 0 (one greedy completion).
  whetstone_upstream_bo8
                    whetstone best_of_n n=8 in upstream mode: no engine of its own, every candidate a
                    streaming request to vLLM's server configured as in the control (started for
                    this way alone when --no-control skips the control).

The servers run one after the other, never two at once, with the same model directory,
dtype (bfloat16) and KV cache size, in compiled mode unless --enforce-eager. Each way is
measured closed-loop at every --concurrency (1 and 8 by default; above 1 the prompts are
sent --passes times): median and p90 latency, generated tokens (usage.completion_tokens,
every choice or candidate counted) and requests/s. Writes benchmarks/results/serving.md,
serving.json and serving.png, with the targets and whether they were met, and the block
docs/performance.md quotes.

    python -m benchmarks.serving                          # starts both servers (compiled)
    python -m benchmarks.serving --report-only            # serving.md/.png and the block from serving.json
    python -m benchmarks.serving --enforce-eager --prompts 2 --max-tokens 16 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.common.environment import log_progress
from benchmarks.common.figure_blocks import RESULTS, run_stamp
from benchmarks.common.servers import (
    WHETSTONE_CPU_ENV,
    WHETSTONE_CPU_FLAGS,
    prepared_model_dir,
    vllm_command,
    whetstone_command,
)
from benchmarks.serving.report import (
    BEST_OF_WAY,
    DEFAULT_WAY,
    GREEDY_WAY,
    MATCHED_VLLM_WAY,
    UPSTREAM_WAY,
    VLLM_WAY,
    Phase,
    Sample,
    measured_document,
    write_report,
)
from clients import AsyncWhetstoneClient
from clients.pool import run_closed_loop
from clients.processes import free_port, spawned
from clients.prompts import LOAD_PROMPTS

log = logging.getLogger("benchmarks.serving")

REQUEST_TIMEOUT = 1800.0
WARMUP_MAX_TOKENS = 16


@dataclass(frozen=True)
class Outcome:
    """What one answered request yields: tokens generated, the chosen answer and its log-likelihood,
    how many candidates (choices) reached the engine."""

    generated_tokens: int
    selected_logprob_sum: float
    text: str
    candidates_drawn: int


Ask = Callable[[str], Awaitable[Outcome]]


def vllm_body(model: str, prompt: str, n: int, max_tokens: int) -> dict[str, Any]:
    """A chat request for vLLM's server: n choices at temperature 1, each token's log-probability."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "n": n,
        "temperature": 1.0,
        "max_tokens": max_tokens,
        "logprobs": True,
        "top_logprobs": 0,
    }


def pick_max(body: dict[str, Any]) -> Outcome:
    """The choice with the highest summed token log-probability, as a client would pick it."""
    best: tuple[float, str] | None = None
    for choice in body["choices"]:
        total = sum(float(token["logprob"]) for token in choice["logprobs"]["content"])
        if best is None or total > best[0]:
            best = (total, str(choice["message"]["content"] or ""))
    if best is None:
        raise ValueError("vLLM answered with no choices")
    return Outcome(int(body["usage"]["completion_tokens"]), best[0], best[1], len(body["choices"]))


def vllm_asker(http: httpx.AsyncClient, model: str, n: int, max_tokens: int) -> Ask:
    """Ask vLLM's server for n choices of a prompt and pick the most likely one."""

    async def ask(prompt: str) -> Outcome:
        response = await http.post("/v1/chat/completions", json=vllm_body(model, prompt, n, max_tokens))
        response.raise_for_status()
        return pick_max(response.json())

    return ask


def whetstone_body(way: str, n: int) -> dict[str, Any]:
    """Sampling fields and the `sharpening` object of a whetstone way (none for the default)."""
    if way == DEFAULT_WAY:
        return {}
    if way == GREEDY_WAY:
        return {"temperature": 0.0, "sharpening": {"strategy": "none"}}
    return {"temperature": 1.0, "sharpening": {"strategy": "best_of_n", "n": n, "prune": True}}


def whetstone_asker(client: AsyncWhetstoneClient, way: str, n: int, max_tokens: int) -> Ask:
    """Ask whetstone for its answer to a prompt in the given way."""
    body = whetstone_body(way, n)

    async def ask(prompt: str) -> Outcome:
        result = await client.chat([{"role": "user", "content": prompt}], max_tokens=max_tokens, **body)
        if result.usage is None or result.sharpening is None:
            raise ValueError("whetstone answered without usage or sharpening summary")
        summary = result.sharpening
        selected = summary.selected_score if summary.selected_score is not None else float("nan")
        return Outcome(result.usage.completion_tokens, selected, result.text, summary.candidates_drawn)

    return ask


async def run_phase(
    way: str, ask: Ask, prompts: list[str], concurrency: int, passes: int
) -> tuple[list[Sample], Phase]:
    """Send every prompt `passes` times through `ask` with `concurrency` requests in flight."""
    order = [i for _ in range(passes) for i in range(len(prompts))]
    bar = tqdm(total=len(order), desc=f"{way} c={concurrency}", unit="req", leave=False)
    errors: list[str] = []

    def job(i: int) -> Callable[[float], Awaitable[Sample | None]]:
        async def run(_due: float) -> Sample | None:
            started = time.perf_counter()
            try:
                outcome = await ask(prompts[i])
            except Exception as exc:  # a failed request is counted, not fatal
                log.warning("%s c=%d prompt %d failed: %r", way, concurrency, i, exc)
                errors.append(repr(exc))
                return None
            finally:
                bar.update(1)
            latency = time.perf_counter() - started
            return Sample(way, concurrency, i, latency, outcome.generated_tokens,
                          outcome.selected_logprob_sum, outcome.text, outcome.candidates_drawn)

        return run

    started = time.perf_counter()
    results = await run_closed_loop((job(i) for i in order), concurrency)
    wall = time.perf_counter() - started
    bar.close()
    samples = [s for s in results if s is not None]
    log.info("%s c=%d: %d requests in %.1f s, %d failed", way, concurrency, len(order), wall, len(errors))
    return samples, Phase(way, concurrency, len(order), len(errors), wall, errors[:5])


async def measure_ways(
    askers: dict[str, Ask], prompts: list[str], concurrencies: list[int], passes: int
) -> tuple[list[Sample], list[Phase]]:
    """Warm every way up, then measure each way at each concurrency, one phase at a time."""
    samples: list[Sample] = []
    phases: list[Phase] = []
    for concurrency in concurrencies:
        for way, ask in askers.items():
            rounds = 1 if concurrency == 1 else passes
            got, phase = await run_phase(way, ask, prompts, concurrency, rounds)
            samples += got
            phases.append(phase)
    return samples, phases


async def warm_up(askers: dict[str, Ask], prompts: list[str], concurrency: int) -> None:
    """Short requests through every way at the highest concurrency: first requests pay one-off costs."""
    for way, ask in askers.items():
        log.info("warming up %s", way)
        await run_closed_loop([_warm_job(ask, p) for p in prompts[:concurrency]], concurrency)


def _warm_job(ask: Ask, prompt: str) -> Callable[[float], Awaitable[Outcome]]:
    """A warm-up job (its result is thrown away)."""

    async def run(_due: float) -> Outcome:
        return await ask(prompt)

    return run


async def measure_vllm(url: str, way: str, args: argparse.Namespace) -> tuple[list[Sample], list[Phase]]:
    """A vLLM-server way against a running vLLM OpenAI server."""
    limits = httpx.Limits(max_connections=max(args.concurrency) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        listed = (await http.get("/v1/models")).json()
        model = str(listed["data"][0]["id"])
        warm = {way: vllm_asker(http, model, args.n, WARMUP_MAX_TOKENS)}
        await warm_up(warm, args.prompts, max(args.concurrency))
        askers = {way: vllm_asker(http, model, args.n, args.max_tokens)}
        return await measure_ways(askers, args.prompts, args.concurrency, args.passes)


async def measure_whetstone(
    url: str, args: argparse.Namespace, ways: tuple[str, ...] = (DEFAULT_WAY, BEST_OF_WAY, GREEDY_WAY)
) -> tuple[list[Sample], list[Phase]]:
    """Whetstone ways (the default, best-of-n and greedy unless told) against a running whetstone."""
    async with AsyncWhetstoneClient(url, timeout=REQUEST_TIMEOUT, max_retries=0) as client:
        warm = {way: whetstone_asker(client, way, args.n, WARMUP_MAX_TOKENS) for way in ways}
        await warm_up(warm, args.prompts, max(args.concurrency))
        askers = {way: whetstone_asker(client, way, args.n, args.max_tokens) for way in ways}
        return await measure_ways(askers, args.prompts, args.concurrency, args.passes)


def vllm_server(args: argparse.Namespace, model_dir: str, way: str) -> AbstractContextManager[str]:
    """vLLM's own OpenAI server (as the way has it configured), or the one given by --vllm-url."""
    if args.vllm_url:
        return nullcontext(args.vllm_url)
    port = free_port()
    matched = way == MATCHED_VLLM_WAY
    command = vllm_command(model_dir, port, dtype=args.dtype, kv_cache_bytes=kv_cache_bytes(args),
                           enforce_eager=args.enforce_eager, flags=WHETSTONE_CPU_FLAGS if matched else ())
    return spawned(command, f"http://127.0.0.1:{port}", args.out / f"serving_{way}_server.log",
                   env=WHETSTONE_CPU_ENV if matched else None)


def whetstone_server(args: argparse.Namespace, model_dir: str) -> AbstractContextManager[str]:
    """A whetstone server with the same model, dtype and KV size, or the one given by --whetstone-url."""
    if args.whetstone_url:
        return nullcontext(args.whetstone_url)
    port = free_port()
    flags = ["--model", model_dir, "--dtype", args.dtype, "--kv-cache-gib", str(args.kv_cache_gib)]
    command = whetstone_command(port, flags, args.enforce_eager)
    return spawned(command, f"http://127.0.0.1:{port}", args.out / "serving_whetstone_server.log")


def upstream_server(args: argparse.Namespace, vllm_url: str) -> AbstractContextManager[str]:
    """whetstone in upstream mode (no engine of its own) in front of a running vLLM server."""
    port = free_port()
    flags = ["--upstream", vllm_url, "--upstream-stream-interval", str(args.upstream_stream_interval)]
    command = whetstone_command(port, flags)
    return spawned(command, f"http://127.0.0.1:{port}", args.out / "serving_upstream_server.log")


def kv_cache_bytes(args: argparse.Namespace) -> int:
    """The KV cache size both servers get, in bytes."""
    return int(args.kv_cache_gib * 1024**3)


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--max-tokens", type=int, default=128, help="token limit per choice/candidate")
    parser.add_argument(
        "--n", type=int, default=8, help="choices (vLLM) / candidates (whetstone) per request"
    )
    parser.add_argument(
        "--prompts",
        type=int,
        default=len(LOAD_PROMPTS),
        help=f"how many built-in prompts to use (at most {len(LOAD_PROMPTS)})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 8],
        help="requests in flight (closed loop); the targets use the lowest for latency "
        "and the highest for throughput",
    )
    parser.add_argument(
        "--passes", type=int, default=3, help="passes over the prompts at concurrency above 1"
    )
    parser.add_argument(
        "--no-control",
        action="store_true",
        help=f"skip `{MATCHED_VLLM_WAY}`, vLLM's server configured as whetstone configures vLLM",
    )
    parser.add_argument(
        "--no-upstream",
        action="store_true",
        help=f"skip `{UPSTREAM_WAY}`, whetstone in upstream mode in front of the (last) vLLM server",
    )
    parser.add_argument(
        "--upstream-stream-interval",
        type=int,
        default=1,
        help=f"`{UPSTREAM_WAY}`: tokens per upstream stream event (whetstone's "
        "--upstream-stream-interval; fewer events, coarser pruning)",
    )
    parser.add_argument(
        "--enforce-eager",
        action="store_true",
        help="start both servers in eager mode (~40 s start instead of ~2 min, ~2x slower decoding)",
    )
    parser.add_argument("--dtype", default="bfloat16", help="dtype of both servers")
    parser.add_argument(
        "--kv-cache-gib", type=float, default=2.0, help="KV cache size of both servers in GiB"
    )
    parser.add_argument("--model", help="model directory for both servers (default: the embedded model)")
    parser.add_argument("--vllm-url", help="a running vLLM OpenAI server to use instead of starting one")
    parser.add_argument("--whetstone-url", help="a running whetstone server to use instead of starting one")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--note", help="a remark to print in the report, e.g. what else ran on the machine")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write the report and the quoted block from serving.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (one server after the other) and write its report."""
    args = build_parser().parse_args(argv)
    if args.report_only:
        write_report(args.out)
        return 0
    stamp = run_stamp("benchmarks.serving")
    if not 1 <= args.prompts <= len(LOAD_PROMPTS):
        raise SystemExit(f"--prompts must be 1..{len(LOAD_PROMPTS)}")
    args.prompts = list(LOAD_PROMPTS[: args.prompts])
    args.concurrency = sorted(set(args.concurrency))
    log_progress()
    started = time.perf_counter()
    model_dir = args.model or prepared_model_dir()
    samples: list[Sample] = []
    phases: list[Phase] = []
    measured = [VLLM_WAY] if args.no_control or args.vllm_url else [VLLM_WAY, MATCHED_VLLM_WAY]
    # upstream mode runs over a vLLM server configured as whetstone configures vLLM (the control's),
    # started for it alone when the control is skipped; over --vllm-url when one is given
    host = VLLM_WAY if args.vllm_url else MATCHED_VLLM_WAY
    servers = measured + ([host] if not args.no_upstream and host not in measured else [])
    for way in servers:
        got: list[Sample] = []
        done: list[Phase] = []
        with vllm_server(args, model_dir, way) as url:
            if way in measured:
                got, done = asyncio.run(measure_vllm(url, way, args))
            if way == host and not args.no_upstream:
                with upstream_server(args, url) as front:
                    more, more_done = asyncio.run(measure_whetstone(front, args, (UPSTREAM_WAY,)))
                got, done = got + more, done + more_done
        samples, phases = samples + got, phases + done
    with whetstone_server(args, model_dir) as url:
        got, done = asyncio.run(measure_whetstone(url, args))
    wall = time.perf_counter() - started
    document = measured_document(args, model_dir, samples + got, phases + done, wall)
    write_report(args.out, document | stamp)
    print((args.out / "serving.md").read_text())
    return 0

