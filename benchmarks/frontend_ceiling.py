"""Frontend ceiling: candidate tokens per second one core of whetstone (upstream mode) sustains.

whetstone runs in upstream mode pinned to one core, in front of the fake vLLM server of
tests/fake_upstream.py, which streams every token at once (no model, no sleeping), pinned with
the load generator to the other core. Two request shapes (`--ways`):

  full_streams  best_of_n n=8, pruning off, top_k 1 (the fake upstream's greedy stream; at
                temperature 0 whetstone would draw a single candidate): every candidate streams its
                full `--max-tokens`, so all the work is whetstone's per-token path (read a
                server-sent event, parse it, extend the candidate, check the bound, count it)
  default       the shipped default, nothing sent but the prompt and max_tokens (greedy + 7 candidates
                at 0.4, exact pruning, load policy spare): against the fake upstream's toy model the
                sampled candidates end within 19 tokens, and at concurrency 8 the load policy leaves
                little room for extras, so requests stream fewer tokens and per-request work weighs more

Reported: candidate tokens per wall-clock second, and per CPU-second of the whetstone process
(read from /proc; this is the ceiling of one core, and stays meaningful when the fake upstream
or other processes on a shared machine are the bottleneck). The second number over a GPU fleet's
token rate says how many whetstone replicas that fleet needs in front of it.

    python -m benchmarks.frontend_ceiling [--seconds 20] [--concurrency 8] [--n 8] [--max-tokens 256]
    python -m benchmarks.frontend_ceiling --report-only   # .md and the quoted block from the JSON
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
from benchmarks.common.figure_blocks import RESULTS, FigureBlock, requote, run_stamp
from benchmarks.common.servers import whetstone_command
from clients.pool import run_closed_loop
from clients.processes import free_port, spawned, spawned_process

log = logging.getLogger("benchmarks.frontend_ceiling")
TARGET_TOKENS_PER_CORE_SECOND = 20_000  # for full_streams, the per-token path alone
WAYS = ("full_streams", "default")
LABELS = {
    "full_streams": "8 candidates stream in full (best_of_n n=8, prune off, top_k 1)",
    "default": "the shipped default (nothing sent)",
}


def request_body(way: str, args: argparse.Namespace) -> dict[str, Any]:
    """One request of a way: the prompt, max_tokens and (full_streams) the sharpening fields."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "Say something long."}],
                            "max_tokens": args.max_tokens}
    if way == "full_streams":
        # top_k 1, not temperature 0: at temperature 0 whetstone draws one candidate, whatever n says
        body |= {"temperature": 1.0, "top_k": 1,
                 "sharpening": {"strategy": "best_of_n", "n": args.n, "prune": False}}
    return body


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(command: list[str], core: int) -> list[str]:
    """The command run on one CPU core."""
    return ["taskset", "-c", str(core), *command]


async def load(url: str, body: dict[str, Any], args: argparse.Namespace) -> tuple[int, int, int, float]:
    """Closed-loop requests until the time is up: (requests, errors, tokens, wall seconds)."""
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


def report(document: dict[str, Any]) -> str:
    """The markdown report: one row per request shape and stream interval."""
    args = document["args"]
    lines = [
        "# Frontend ceiling (upstream mode, fake upstream that streams instantly)",
        "",
        f"whetstone pinned to one core; max_tokens {args['max_tokens']}, concurrency {args['concurrency']}, "
        f"{args['seconds']:.0f} s measured per row. Machine: {document['machine']}. {document['date']}; "
        f"command: `{document['command']}`.",
        "Tokens per event is `--upstream-stream-interval` (vLLM's `stream_interval`). Request shapes: "
        + "; ".join(f"`{way}` {LABELS[way]}" for way in dict.fromkeys(r["way"] for r in document["rows"]))
        + ". Candidate tokens count every candidate's tokens (`usage.completion_tokens`).",
        *([f"Note: {args['note']}"] if args.get("note") else []),
        "",
        "| request | tokens per event | requests | errors | candidate tokens | wall s | tokens/s (wall) "
        "| whetstone CPU s | whetstone core share | tokens per whetstone CPU-second "
        "| requests per whetstone CPU-second |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in document["rows"]:
        lines.append(
            f"| {r['way']} | {r['stream_interval']} | {r['requests']} | {r['errors']} | {r['tokens']} "
            f"| {r['wall_s']:.1f} | {r['tokens_per_second']:,.0f} | {r['whetstone_cpu_s']:.1f} "
            f"| {r['whetstone_cpu_share']:.0%} | {r['tokens_per_cpu_second']:,.0f} "
            f"| {r['requests'] / r['whetstone_cpu_s']:,.1f} |"
        )
    lines += [
        "",
        f"Target (`full_streams`, the per-token path alone): >= {TARGET_TOKENS_PER_CORE_SECOND:,} candidate "
        "tokens per whetstone core-second. A core share below 100% means the fake upstream, the load "
        "generator or other processes (not whetstone) set the wall-clock rate; tokens per CPU-second is "
        "the ceiling of one core.",
        "",
    ]
    return "\n".join(lines)


def headline(document: dict[str, Any]) -> str:
    """The block docs/performance.md quotes: one core's tokens and requests per CPU-second."""
    args = document["args"]
    lines = [
        "| request | tokens per event | candidate tokens per whetstone CPU-second "
        "| requests per whetstone CPU-second |",
        "|---|---:|---:|---:|",
    ]
    for r in document["rows"]:
        lines.append(f"| {LABELS[r['way']]} | {r['stream_interval']} | {r['tokens_per_cpu_second']:,.0f} "
                     f"| {r['requests'] / r['whetstone_cpu_s']:,.1f} |")
    lines += [
        "",
        f"max_tokens {args['max_tokens']}, concurrency {args['concurrency']}, {args['seconds']:.0f} s "
        "per row; "
        f"{document['machine']}; {document['date']}; `python -m benchmarks.frontend_ceiling` "
        "([full table, command line and note](benchmarks/results/frontend_ceiling.md)).",
    ]
    return "\n".join(lines) + "\n"


BLOCKS = (FigureBlock("frontend_ceiling", RESULTS / "frontend_ceiling.json", headline),)


def write_report(out: Path, document: dict[str, Any] | None = None) -> None:
    """frontend_ceiling.json (when given a document), then its .md and the quoted block from it."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "frontend_ceiling.json"
    if document is not None:
        data.write_text(json.dumps(document, indent=2, default=str) + "\n")
    document = json.loads(data.read_text())
    (out / "frontend_ceiling.md").write_text(report(document))
    requote(out, BLOCKS)


def measure(args: argparse.Namespace, way: str, interval: int, cores: tuple[int, int]) -> dict[str, Any]:
    """One run of a request shape: the fake upstream and a whetstone in front of it, loaded for
    `args.seconds`."""
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
        url = f"http://127.0.0.1:{port}"
        requests, errors, tokens, wall = asyncio.run(load(url, request_body(way, args), args))
        cpu = cpu_seconds(whetstone.pid) - cpu_before
    return {
        "way": way, "stream_interval": interval, "requests": requests, "errors": errors, "tokens": tokens,
        "wall_s": wall, "tokens_per_second": tokens / wall, "whetstone_cpu_s": cpu,
        "tokens_per_cpu_second": tokens / cpu if cpu else 0.0, "whetstone_cpu_share": cpu / wall,
    }


def main(argv: list[str] | None = None) -> int:
    """Start the fake upstream and whetstone, measure, write frontend_ceiling.md/.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontend_ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per row")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--n", type=int, default=8, help="candidates per full_streams request")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per candidate")
    parser.add_argument("--stream-interval", type=int, nargs="+", default=[1, 4],
                        help="tokens per upstream event, one run each")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), help="request shapes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--note", help="a remark for the report, e.g. what else ran on the machine")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write the report and the quoted block from the JSON")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(args.out)
        return 0
    log_progress()
    stamp = run_stamp("benchmarks.frontend_ceiling")
    available = sorted(os.sched_getaffinity(0))
    cores = (available[0], available[-1])
    os.sched_setaffinity(0, {cores[1]})  # the load generator shares the fake upstream's core
    rows = [measure(args, way, interval, cores) for way in args.ways for interval in args.stream_interval]
    arguments = {k: v for k, v in vars(args).items() if k not in ("out", "report_only")}
    write_report(args.out, {"machine": machine(), **stamp, "args": arguments, "rows": rows})
    print((args.out / "frontend_ceiling.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
