"""`whetstone ab`: the same items through two request configurations, compared side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from clients.checkers import CHECKERS, auto_match, checker
from clients.client import AsyncWhetstoneClient
from clients.comparison import Output, output_from, summarize
from clients.datasets import DATASETS, builtin_dataset
from clients.errors import WhetstoneError
from clients.items import Endpoint, InputError, Item, ask, check_endpoint, read_items
from clients.options import (
    add_server_options,
    client_from,
    fail,
    json_object,
    positive_int,
    positive_int_list,
    progress_bar,
    regex,
)
from clients.pool import run_closed_loop

# Greedy decoding against whatever the server does for a plain OpenAI request (no temperature, no
# `sharpening` object): as shipped, best-of-8 with a greedy candidate and 7 drawn at temperature 0.4.
DEFAULT_A: dict[str, Any] = {"temperature": 0.0, "sharpening": {"strategy": "none"}}
DEFAULT_B: dict[str, Any] = {}
RESERVED_FIELDS = ("messages", "prompt")
BASELINE = "A"
DEFAULT_DATASET = "arithmetic"


@dataclass(frozen=True)
class Side:
    """One configuration under comparison: its name and the request fields it sends."""

    name: str
    fields: dict[str, Any]
    n: int | None = None


def request_fields(config: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    """A side's request fields: max_tokens, then its config."""
    clashing = [key for key in RESERVED_FIELDS if key in config]
    if clashing:
        raise InputError(f"a side's config cannot set {', '.join(clashing)}; the items do")
    return ({} if max_tokens is None else {"max_tokens": max_tokens}) | config


def plan_sides(
    a: dict[str, Any], b: dict[str, Any], max_tokens: int | None, sweep_ns: Sequence[int] = ()
) -> list[Side]:
    """A and B, or A and B at each N of a sweep."""
    sides = [Side(BASELINE, request_fields(a, max_tokens))]
    if not sweep_ns:
        return [*sides, Side("B", request_fields(b, max_tokens))]
    sharpening = b.get("sharpening") or {}
    if not isinstance(sharpening, dict):
        raise InputError(f"--b: `sharpening` must be a JSON object, got {sharpening!r}")
    for n in sweep_ns:
        fields = request_fields(b, max_tokens)
        fields["sharpening"] = sharpening | {"n": n}
        sides.append(Side(f"B n={n}", fields, n))
    return sides


async def answer(
    client: AsyncWhetstoneClient,
    item: Item,
    side: Side,
    endpoint: Endpoint,
    check: Callable[[str, str], bool],
) -> Output:
    """One side's Output for one item; a failed request becomes an Output with its error."""
    try:
        completion = await ask(client, item, endpoint, side.fields)
    except WhetstoneError as exc:
        return Output(error=f"{exc.kind}: {exc}")
    return output_from(completion, item.answer, check)


async def run_ab(
    client: AsyncWhetstoneClient,
    items: Sequence[Item],
    sides: Sequence[Side],
    endpoint: Endpoint = "chat",
    check: Callable[[str, str], bool] = auto_match,
    concurrency: int = 4,
    on_done: Callable[[Output], None] | None = None,
) -> dict[str, list[Output]]:
    """Every item through every side, interleaved so both sides see the same server load."""
    pairs = [(i, side) for i in range(len(items)) for side in sides]

    async def job(i: int, side: Side, _due: float) -> tuple[int, Side, Output]:
        return i, side, await answer(client, items[i], side, endpoint, check)

    report = None if on_done is None else lambda done: on_done(done[2])
    done = await run_closed_loop([partial(job, i, side) for i, side in pairs], concurrency, on_done=report)
    outputs = {side.name: [Output()] * len(items) for side in sides}
    for i, side, output in done:
        outputs[side.name][i] = output
    return outputs


def load_items(args: argparse.Namespace) -> tuple[list[Item], str]:
    """The items to compare and a phrase naming where they came from."""
    if args.data:
        items, source = read_items(args.data), f"`{args.data}`"
    else:
        name = args.dataset or DEFAULT_DATASET
        items, source = builtin_dataset(name), f"built-in dataset `{name}`"
    check_endpoint(items, args.endpoint)
    return items[: args.limit] if args.limit else items, source


async def _run(
    args: argparse.Namespace, items: list[Item], sides: list[Side],
    transport: httpx.AsyncBaseTransport | None,
) -> dict[str, list[Output]]:
    with progress_bar(len(items) * len(sides), "ab") as bar:
        async with client_from(args, transport) as client:
            check = checker(args.checker, args.answer_pattern)
            return await run_ab(client, items, sides, args.endpoint, check,
                                args.concurrency, lambda _: bar.update(1))


def run_ab_command(args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Entry point of `whetstone ab` (`transport` replaces the network); exit 1 when every request failed."""
    from clients.report import write_report  # matplotlib loads only when a report is made

    try:
        items, source = load_items(args)
        sides = plan_sides(args.a, args.b, args.max_tokens, args.sweep_n or ())
    except InputError as exc:
        return fail("ab", str(exc))
    started = time.perf_counter()
    outputs = asyncio.run(_run(args, items, sides, transport))
    summary = summarize(outputs, BASELINE)
    summary["configs"] = {side.name: side.fields for side in sides}
    summary["run"] = {"items": len(items), "source": source, "checker": args.checker,
                      "url": args.url, "endpoint": args.endpoint,
                      "seconds": time.perf_counter() - started}
    if args.sweep_n:
        summary["sweep"] = [{"n": side.n, "side": side.name} for side in sides[1:]]
    report = write_report(Path(args.out), items, outputs, summary, html=args.html)
    print(overview(summary))
    print(f"report: {report}" + (f" and {report.with_suffix('.html')}" if args.html else ""))
    failed = all(o.error for side in outputs.values() for o in side)
    return 1 if failed else 0


def overview(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: each side's accuracy, log-likelihood, length, record."""
    lines = []
    for name, s in summary["sides"].items():
        accuracy = ("" if s["accuracy"] is None
                    else f"accuracy {s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]  ")
        ll = "-" if s["mean_log_likelihood"] is None else f"{s['mean_log_likelihood']:.2f}"
        length = "-" if s["mean_length"] is None else f"{s['mean_length']:.1f}"
        record = summary["versus_baseline"].get(name)
        versus = ("" if record is None else
                  f"  vs {BASELINE}: {record['b_wins']} wins, {record['ties']} ties, "
                  f"{record['a_wins']} losses")
        lines.append(f"{name:<8} {accuracy}mean log-likelihood {ll}  mean length {length}  "
                     f"errors {s['errors']}{versus}")
    return "\n".join(lines)


def add_ab_parser(commands: Any) -> None:
    """Register `whetstone ab`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "ab", help="compare two request configurations (default: greedy vs the server's default) "
        "on a data set",
        description="Send every item through configuration A and configuration B and compare: "
        "accuracy with 95% Wilson intervals (items with an `answer`), win/tie/loss of B "
        "against A (by correctness, else by the model's log-likelihood of each answer), mean "
        "log-likelihood and mean answer length. Writes OUT/report.md with PNG plots, "
        "OUT/items.jsonl (every output) and OUT/summary.json. With --sweep-n, side B runs at "
        "each N and the report plots accuracy and log-likelihood against N. A side's JSON holds "
        "any request fields (temperature, top_p, seed, sharpening, ...) except messages and "
        "prompt; a field it leaves out is not sent, so the server's default applies. By default "
        "A is greedy decoding and B is a plain request (no temperature, no sharpening object), "
        "which gets the server's default sharpening.",
        epilog="Example: whetstone ab --dataset arithmetic --limit 20 "
        "--b '{\"temperature\": 1, \"sharpening\": {\"strategy\": \"best_of_n\", \"n\": 4}}' "
        "--out ab-out. Exit status: 0 when the report was written, 1 when every request "
        "failed, 2 for unusable input.",
    )
    parser.set_defaults(run=run_ab_command)
    add_server_options(parser, max_retries=2, max_tokens=128)
    parser.add_argument("--a", type=json_object, default=DEFAULT_A, metavar="JSON",
                        help=f"request fields of side A (default, greedy decoding: {json.dumps(DEFAULT_A)})")
    parser.add_argument("--b", type=json_object, default=DEFAULT_B, metavar="JSON",
                        help="request fields of side B (default: {}, no temperature and no sharpening "
                        "object, so the server's default applies)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, metavar="FILE.jsonl",
                        help="items: one JSON object per line with `prompt` or `messages` "
                        "and optionally `answer`")
    source.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                        help=f"a built-in data set (default when --data is not given: "
                        f"{DEFAULT_DATASET})")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="use only the first N items")
    parser.add_argument("--checker", choices=CHECKERS, default="auto",
                        help="numeric: the last number in the output equals the answer; "
                        "exact: normalised text equality; auto: numeric for numeric answers, "
                        "else exact (default: %(default)s)")
    parser.add_argument("--answer-pattern", type=regex, default=None, metavar="REGEX",
                        help="judge only the answer this regex extracts (group 1, else the whole "
                        "match), e.g. 'Answer: ([A-D])'; no match counts as wrong")
    parser.add_argument("--sweep-n", type=positive_int_list, default=None, metavar="N,N,...",
                        help="run side B once per N (sharpening.n), e.g. 1,2,4,8,16")
    parser.add_argument("--html", action="store_true",
                        help="also write OUT/report.html: the report as one self-contained page, "
                        "plots inline")
    parser.add_argument("--out", default="ab-report", metavar="DIR",
                        help="directory for report.md, plots, items.jsonl and summary.json "
                        "(default: %(default)s)")
