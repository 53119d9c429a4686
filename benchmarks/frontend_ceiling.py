"""Frontend ceiling: candidate tokens per second one core of whetstone (upstream mode) sustains.

whetstone runs in upstream mode pinned to one core, in front of the fake vLLM server of
tests/fake_upstream.py, which streams every token at once (no model, no sleeping), pinned with
the load generator to the other core. Requests are best_of_n with pruning off at temperature 0,
so every candidate streams its full `--max-tokens`: all the work is whetstone's per-token path
(read a server-sent event, parse it, extend the candidate, check the bound, count it).

Reported: candidate tokens per wall-clock second, and per CPU-second of the whetstone process
(read from /proc; this is the ceiling of one core, and stays meaningful when the fake upstream
or other processes on a shared machine are the bottleneck). The second number over a GPU fleet's
token rate says how many whetstone replicas that fleet needs in front of it.

    python -m benchmarks.frontend_ceiling [--seconds 20] [--concurrency 8] [--n 8] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import whetstone_command
from clients.pool import run_closed_loop
from clients.processes import free_port, spawned, spawned_process

log = logging.getLogger("benchmarks.frontend_ceiling")
TARGET_TOKENS_PER_CORE_SECOND = 20_000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(command: list[str], core: int) -> list[str]:
    """The command run on one CPU core."""
    return ["taskset", "-c", str(core), *command]


async def load(url: str, args: argparse.Namespace) -> tuple[int, int, int, float]:
    """Closed-loop best-of-n requests until the time is up: (requests, errors, tokens, wall seconds)."""
    body = {
        "messages": [{"role": "user", "content": "Say something long."}],
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "sharpening": {"strategy": "best_of_n", "n": args.n, "prune": False},
    }
    tokens = errors = 0

    async def ask(_due: float) -> None:
        nonlocal tokens, errors
        response = await http.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            errors += 1
            log.warning("error %d: %s", response.status_code, response.text[:300])
            return
        tokens += int(response.json()["usage"]["completion_tokens"])

    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await run_closed_loop((ask for _ in range(args.concurrency * 2)), args.concurrency)  # warm-up
        tokens = errors = 0
        started = time.perf_counter()
        deadline = started + args.seconds
        jobs = (ask for _ in iter(int, 1))
        done = await run_closed_loop(jobs, args.concurrency, deadline=deadline)
        return len(done), errors, tokens, time.perf_counter() - started


def report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    """The markdown report: one row per stream interval."""
    lines = [
        "# Frontend ceiling (upstream mode, fake upstream that streams instantly)",
        "",
        f"whetstone pinned to one core; best_of_n n={args.n}, prune off, T=0, max_tokens {args.max_tokens}, "
        f"concurrency {args.concurrency}, {args.seconds:.0f} s measured per row. Machine: {machine()}.",
        "Tokens per event is `--upstream-stream-interval` (vLLM's `stream_interval`).",
        *([f"Note: {args.note}"] if args.note else []),
        "",
        "| tokens per event | requests | errors | candidate tokens | wall s | tokens/s (wall) "
        "| whetstone CPU s | whetstone core share | tokens per whetstone CPU-second |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stream_interval']} | {r['requests']} | {r['errors']} | {r['tokens']} | {r['wall_s']:.1f} "
            f"| {r['tokens_per_second']:,.0f} | {r['whetstone_cpu_s']:.1f} | {r['whetstone_cpu_share']:.0%} "
            f"| {r['tokens_per_cpu_second']:,.0f} |"
        )
    lines += [
        "",
        f"Target: >= {TARGET_TOKENS_PER_CORE_SECOND:,} candidate tokens per whetstone core-second. "
        "A core share below 100% means the fake upstream, the load generator or other processes "
        "(not whetstone) set the wall-clock rate; tokens per CPU-second is the ceiling of one core.",
        "",
    ]
    return "\n".join(lines)


def measure(args: argparse.Namespace, interval: int, cores: tuple[int, int]) -> dict[str, Any]:
    """One run: the fake upstream and a whetstone in front of it, loaded for `args.seconds`."""
    front_core, back_core = cores
    fake_port, port = free_port(), free_port()
    fake = pinned([sys.executable, "-m", "tests.fake_upstream", "--port", str(fake_port)], back_core)
    fake_url = f"http://127.0.0.1:{fake_port}"
    flags = ["--upstream", fake_url, "--upstream-stream-interval", str(interval), "--log-level", "warning"]
    front = pinned(whetstone_command(port, flags), front_core)
    with spawned(fake, fake_url, args.out / "frontend_fake_upstream.log"), spawned_process(
        front, f"http://127.0.0.1:{port}", args.out / "frontend_whetstone.log"
    ) as whetstone:
        cpu_before = cpu_seconds(whetstone.pid)
        requests, errors, tokens, wall = asyncio.run(load(f"http://127.0.0.1:{port}", args))
        cpu = cpu_seconds(whetstone.pid) - cpu_before
    return {
        "stream_interval": interval, "requests": requests, "errors": errors, "tokens": tokens,
        "wall_s": wall, "tokens_per_second": tokens / wall, "whetstone_cpu_s": cpu,
        "tokens_per_cpu_second": tokens / cpu if cpu else 0.0, "whetstone_cpu_share": cpu / wall,
    }


def main(argv: list[str] | None = None) -> int:
    """Start the fake upstream and whetstone, measure, write frontend_ceiling.md/.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontend_ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per stream interval")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--n", type=int, default=8, help="candidates per request")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per candidate")
    parser.add_argument("--stream-interval", type=int, nargs="+", default=[1, 4],
                        help="tokens per upstream event, one run each")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    parser.add_argument("--note", help="a remark for the report, e.g. what else ran on the machine")
    args = parser.parse_args(argv)
    log_progress()
    available = sorted(os.sched_getaffinity(0))
    cores = (available[0], available[-1])
    os.sched_setaffinity(0, {cores[1]})  # the load generator shares the fake upstream's core
    rows = [measure(args, interval, cores) for interval in args.stream_interval]
    document = {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "out"},
                "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "frontend_ceiling.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    (args.out / "frontend_ceiling.md").write_text(report(args, rows))
    print(report(args, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
