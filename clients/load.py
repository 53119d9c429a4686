"""`whetstone load`: a load generator with latency, throughput and error statistics."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from clients.client import AsyncWhetstoneClient
from clients.errors import WhetstoneError
from clients.items import Endpoint, InputError, Item, ask, check_endpoint, read_items
from clients.options import (
    add_server_options,
    client_from,
    fail,
    json_object,
    positive_float,
    positive_int,
    progress_bar,
    write_json,
)
from clients.pool import ARRIVALS, Arrival, Job, gaps, run_closed_loop, run_open_loop
from clients.prompts import load_prompts
from clients.stats import distribution

DEFAULT_REQUESTS = 50


@dataclass(frozen=True)
class LoadPlan:
    """How much load to send and how: a count or a duration, closed or open loop."""

    fields: dict[str, Any] = field(default_factory=dict)
    endpoint: Endpoint = "chat"
    concurrency: int = 4
    requests: int | None = DEFAULT_REQUESTS
    duration: float | None = None
    rate: float | None = None
    arrival: Arrival = "poisson"
    seed: int = 0


@dataclass(frozen=True)
class Outcome:
    """One request's result: its latency and tokens, or the kind of error it ended with."""

    latency: float
    time_to_first_token: float | None = None
    completion_tokens: int = 0
    error: str | None = None
    message: str | None = None


async def measure(
    client: AsyncWhetstoneClient, item: Item, plan: LoadPlan, due: float
) -> Outcome:
    """Send one item; latency and time to first token count from `due` (queueing included)."""
    waited = time.perf_counter() - due
    try:
        completion = await ask(client, item, plan.endpoint, plan.fields)
    except WhetstoneError as exc:
        return Outcome(latency=time.perf_counter() - due, error=exc.kind, message=str(exc))
    ttft = completion.time_to_first_token
    return Outcome(
        latency=waited + completion.latency,
        time_to_first_token=None if ttft is None else waited + ttft,
        completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
    )


async def run_load(
    client: AsyncWhetstoneClient,
    items: Sequence[Item],
    plan: LoadPlan,
    on_done: Callable[[Outcome], None] | None = None,
) -> tuple[list[Outcome], float]:
    """Send the planned load, cycling through `items`; the outcomes and the wall time."""
    cycled = itertools.cycle(items)
    chosen = cycled if plan.requests is None else itertools.islice(cycled, plan.requests)
    jobs: Iterator[Job[Outcome]] = (partial(measure, client, item, plan) for item in chosen)
    started = time.perf_counter()
    deadline = None if plan.duration is None else started + plan.duration
    if plan.rate is None:
        outcomes = await run_closed_loop(jobs, plan.concurrency, deadline, on_done)
    else:
        intervals = gaps(plan.rate, plan.arrival, random.Random(plan.seed))
        outcomes = await run_open_loop(jobs, intervals, plan.concurrency, deadline, on_done)
    return outcomes, time.perf_counter() - started


def summarize(outcomes: Sequence[Outcome], seconds: float) -> dict[str, Any]:
    """Latency percentiles (s), throughput and errors by kind, as the JSON report has them."""
    ok = [o for o in outcomes if o.error is None]
    errors = Counter(o.error for o in outcomes if o.error is not None)
    examples: dict[str, str] = {}
    for o in outcomes:
        if o.error is not None:
            examples.setdefault(o.error, o.message or "")
    tokens = sum(o.completion_tokens for o in ok)
    latency = distribution([o.latency for o in ok]) or dict.fromkeys(
        ("p50", "p90", "p99", "mean", "min", "max")
    )
    ttfts = [o.time_to_first_token for o in ok if o.time_to_first_token is not None]
    per_second = 1 / seconds if seconds > 0 else 0.0
    return {
        "requests": len(outcomes),
        "successful": len(ok),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors.most_common()),
        "error_examples": examples,
        "duration_seconds": seconds,
        "requests_per_second": len(ok) * per_second,
        "generated_tokens": tokens,
        "generated_tokens_per_second": tokens * per_second,
        **latency,
        "ttft": distribution(ttfts),
    }


def _row(label: str, values: dict[str, Any]) -> str:
    cells = "".join(
        f"{'-' if values.get(k) is None else format(values[k], '.3f'):>10}"
        for k in ("p50", "p90", "p99", "mean")
    )
    return f"{label:<20}{cells}"


def format_summary(summary: dict[str, Any], title: str) -> str:
    """The human-readable summary table."""
    lines = [
        title,
        f"{'':<20}{'p50':>10}{'p90':>10}{'p99':>10}{'mean':>10}",
        _row("latency (s)", summary),
    ]
    if summary["ttft"] is not None:
        lines.append(_row("ttft (s)", summary["ttft"]))
    lines += [
        f"{'successful':<20}{summary['successful']} / {summary['requests']}",
        f"{'requests/s':<20}{summary['requests_per_second']:.2f}",
        f"{'generated tokens/s':<20}{summary['generated_tokens_per_second']:.1f}",
        f"{'errors':<20}{summary['errors']}",
    ]
    for kind, count in summary["errors_by_kind"].items():
        lines.append(f"  {kind}: {count}  e.g. {summary['error_examples'][kind][:120]}")
    return "\n".join(lines)


def describe(plan: LoadPlan, summary: dict[str, Any]) -> str:
    """One line saying what load was sent."""
    loop = (f"closed loop, concurrency {plan.concurrency}" if plan.rate is None
            else f"open loop, {plan.arrival} arrivals at {plan.rate:g}/s, "
                 f"at most {plan.concurrency} in flight")
    stream = ", streaming" if plan.fields.get("stream") else ""
    return (f"whetstone load: {summary['requests']} requests in "
            f"{summary['duration_seconds']:.1f} s, {loop}{stream}")


def plan_from(args: argparse.Namespace) -> LoadPlan:
    """The load plan the command-line flags describe."""
    fields = {"max_tokens": args.max_tokens, "temperature": args.temperature,
              "sharpening": args.sharpening, "stream": args.stream}
    requests = args.requests if args.requests or args.duration else DEFAULT_REQUESTS
    return LoadPlan(fields=fields, endpoint=args.endpoint, concurrency=args.concurrency,
                    requests=requests, duration=args.duration, rate=args.rate,
                    arrival=args.arrival, seed=args.seed)


async def _run(args: argparse.Namespace, items: list[Item], plan: LoadPlan) -> dict[str, Any]:
    with progress_bar(plan.requests, "load") as bar:
        def tick(outcome: Outcome) -> None:
            bar.update(1)
            if outcome.error is not None:
                bar.set_postfix_str(f"last error: {outcome.error}", refresh=False)

        async with client_from(args) as client:
            outcomes, seconds = await run_load(client, items, plan, tick)
    return summarize(outcomes, seconds)


def run_load_command(args: argparse.Namespace) -> int:
    """Entry point of `whetstone load`; exit code 1 when no request succeeded."""
    try:
        items = read_items(args.prompts) if args.prompts else load_prompts()
        check_endpoint(items, args.endpoint)
    except InputError as exc:
        return fail("load", str(exc))
    plan = plan_from(args)
    summary = asyncio.run(_run(args, items, plan))
    summary["config"] = {
        "url": args.url, "endpoint": plan.endpoint, "concurrency": plan.concurrency,
        "requests": plan.requests, "duration": plan.duration, "rate": plan.rate,
        "arrival": plan.arrival, "prompts": args.prompts or "built-in", **plan.fields,
    }
    print(format_summary(summary, describe(plan, summary)))
    if args.json:
        write_json(args.json, summary)
    return 1 if summary["successful"] == 0 else 0


def add_load_parser(commands: Any) -> None:
    """Register `whetstone load`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "load", help="load-test a running server and report latency percentiles",
        description="Send chat (or completion) requests to a whetstone server and report "
        "latency p50/p90/p99, time to first token (with --stream), requests/s, generated "
        "tokens/s (usage.completion_tokens: every candidate's tokens) and errors by kind. "
        "Closed loop by default: --concurrency workers send back to back. With --rate, "
        "open loop: requests start on schedule whether or not earlier ones have finished, "
        "and latency counts from the scheduled start, so queueing is not hidden.",
        epilog="Exit status: 0 when at least one request succeeded, 1 when none did, "
        "2 for unusable input. Example: whetstone load --concurrency 8 --requests 200 "
        "--sharpening '{\"strategy\": \"best_of_n\", \"n\": 4}' --stream --json load.json",
    )
    parser.set_defaults(run=run_load_command)
    add_server_options(parser, max_retries=0)
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--requests", type=positive_int, default=None, metavar="N",
                        help=f"send N requests in all (default {DEFAULT_REQUESTS} unless "
                        "--duration is given)")
    amount.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                        help="keep sending for this long, then wait for the ones in flight")
    parser.add_argument("--rate", type=positive_float, default=None, metavar="PER_SECOND",
                        help="open loop: start this many requests per second on average")
    parser.add_argument("--arrival", choices=ARRIVALS, default="poisson",
                        help="with --rate: exponential gaps (poisson) or equal gaps (fixed); "
                        "default: %(default)s")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the Poisson arrivals (default: %(default)s)")
    parser.add_argument("--prompts", default=None, metavar="FILE.jsonl",
                        help="one JSON object per line with `prompt` or `messages`; default: "
                        "a built-in set of short chat prompts, sent round-robin")
    parser.add_argument("--sharpening", type=json_object, default=None, metavar="JSON",
                        help="the requests' sharpening object, e.g. "
                        "'{\"strategy\": \"best_of_n\", \"n\": 8}' (default: server defaults)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature (default: the server's)")
    parser.add_argument("--stream", action="store_true",
                        help="stream responses and measure time to first token")
    parser.add_argument("--json", default=None, metavar="OUT",
                        help="also write the summary as JSON to this file")
