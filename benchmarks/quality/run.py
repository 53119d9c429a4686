"""Does sharpening help? Accuracy of best-of-N, majority vote and greedy on the quality tasks.

Per item the benchmark asks the server once for 32 candidates at temperature 1 (fixed seed,
no pruning, every candidate returned) and once for the greedy completion, and caches both
under OUT/quality_raw/TASK.jsonl (an interrupted run resumes where it stopped). Offline, for
N = 1, 2, 4, ... 32 it sub-samples N of the 32 candidates many times per item and scores
  best-of-N, lp 0  the highest raw sequence log-likelihood (the paper's rule)
  best-of-N, lp 1  the highest mean log-likelihood per token
  majority vote    the most frequent extracted answer, ties broken by log-likelihood
  pass@N           whether any of the N is correct (the ceiling any selection rule can reach)
against greedy decoding, with 95% Wilson intervals and the paper's lift over greedy. It writes
OUT/quality.md and OUT/quality_*.png; OUT/quality_findings.md, when present, is put on top.

With --strategies (default: power smc mcmc confidence; --no-strategies skips them) it also asks
the server once per item and strategy (n = 8, the strategy's defaults) on the first
--strategy-items items of each task, caches the answers under OUT/quality_raw/strategies/, and
adds an accuracy-versus-generated-tokens (Pareto) section per task to the report.

Examples:
  python -m benchmarks.quality --enforce-eager --limit 5          # a quick look
  python -m benchmarks.quality --limit 200 gsm8k=50 --concurrency 3
  python -m benchmarks.quality --url http://127.0.0.1:8000 --tasks arithmetic
  python -m benchmarks.quality --report-only                       # rebuild from the cache
  python -m benchmarks.quality --tasks arithmetic arc_easy          # the committed strategies run
  python -m benchmarks.quality --tasks arithmetic --strategy-items 40 --strategies smc mcmc
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import time
from pathlib import Path

from benchmarks.common.datasets import TASKS, Item, load_task
from benchmarks.common.environment import log_progress
from benchmarks.common.servers import whetstone_command
from benchmarks.quality.collect import Collection, collect_task
from benchmarks.quality.data import (
    append_record,
    cached_ids,
    graded_items,
    raw_path,
    read_records,
    runs_path,
)
from benchmarks.quality.pareto import pareto_sections
from benchmarks.quality.report import TaskReport, write_report
from benchmarks.quality.strategies import (
    DEFAULT_STRATEGY_ITEMS,
    LIVE_STRATEGIES,
    collect_strategies,
    uncached_answers,
)
from clients.processes import free_port, spawned

# The committed results' item counts (about 45 minutes on 2 shared cores).
DEFAULT_LIMITS = {"arithmetic": 300, "arc_easy": 300, "gsm8k": 60}

log = logging.getLogger("benchmarks.quality")


def parse_limits(values: list[str]) -> dict[str, int]:
    """Items per task from entries "COUNT" (every task) or "TASK=COUNT" (one task); only those given."""
    limits: dict[str, int] = {}
    for value in values:
        name, _, count = value.rpartition("=")
        if name and name not in TASKS:
            raise argparse.ArgumentTypeError(f"unknown task {name!r} in --limit {value}")
        if not count.isdigit():
            raise argparse.ArgumentTypeError(f"--limit {value}: the count must be a whole number")
        limits.update({name: int(count)} if name else dict.fromkeys(TASKS, int(count)))
    return limits


def sizes_up_to(max_n: int) -> list[int]:
    """1, 2, 4, ... up to and including max_n (added when it is not a power of two)."""
    sizes = [1]
    while sizes[-1] * 2 <= max_n:
        sizes.append(sizes[-1] * 2)
    return sizes if sizes[-1] == max_n else [*sizes, max_n]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server = parser.add_argument_group("server")
    server.add_argument("--url", default=None,
                        help="base URL of a running whetstone server (default: start one as a subprocess "
                             "and stop it at the end)")
    server.add_argument("--enforce-eager", action="store_true",
                        help="start the server with --enforce-eager: ready in ~40 s instead of ~2 min, "
                             "decodes more slowly (only without --url)")
    server.add_argument("--port", type=int, default=None,
                        help="port for the started server (default: a free one)")
    server.add_argument("--concurrency", type=int, default=3,
                        help="items in flight at once (default: %(default)s)")
    work = parser.add_argument_group("what to run")
    work.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(DEFAULT_LIMITS),
                      metavar="TASK", help=f"tasks to run, of {', '.join(TASKS)} (default: all)")
    work.add_argument("--limit", nargs="+", default=[], metavar="[TASK=]COUNT",
                      help="items per task: a count for every task and/or TASK=COUNT (default: "
                           f"{' '.join(f'{k}={v}' for k, v in DEFAULT_LIMITS.items())}; the report "
                           "uses every cached item of a task with no limit given)")
    work.add_argument("--max-n", type=int, default=32,
                      help="candidates drawn per item; N runs over 1, 2, 4, ... up to it "
                           "(default: %(default)s)")
    work.add_argument("--subsets", type=int, default=200,
                      help="random N-subsets per item and N (all of them when fewer; default: %(default)s)")
    work.add_argument("--seed", type=int, default=0, help="seed of the sub-sampling (default: %(default)s)")
    work.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                      help="results directory (default: %(default)s)")
    work.add_argument("--strategies", nargs="+", choices=LIVE_STRATEGIES, default=list(LIVE_STRATEGIES),
                      metavar="STRATEGY",
                      help="live strategies asked once per item (n=8, their defaults), of "
                           f"{', '.join(LIVE_STRATEGIES)} (default: all)")
    work.add_argument("--no-strategies", action="store_true",
                      help="neither ask nor report the live strategies")
    work.add_argument("--strategy-items", type=int, default=DEFAULT_STRATEGY_ITEMS,
                      help="the live strategies run on the first COUNT items of each task "
                           "(default: %(default)s)")
    work.add_argument("--report-only", action="store_true",
                      help="do not query a server; rebuild the report from OUT/quality_raw/")
    return parser


def log_run(out: Path, collection: Collection, url: str, spawned: str | None) -> None:
    """Append one collection's numbers to OUT/quality_raw/runs.jsonl."""
    entry = {
        "task": collection.task,
        "requested": collection.requested,
        "collected": collection.collected,
        "failed": collection.failed,
        "seconds": round(collection.seconds, 1),
        "url": url,
        "server": spawned,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    append_record(runs_path(out), entry)


def live_strategies(args: argparse.Namespace) -> list[str]:
    """The live strategies to ask and report (none with --no-strategies)."""
    return [] if args.no_strategies else list(dict.fromkeys(args.strategies))


async def collect_all(
    args: argparse.Namespace, url: str, limits: dict[str, int], spawned: str | None
) -> None:
    """Collect every requested task in turn against the server at `url`, then its live strategies."""
    for name in args.tasks:
        task = TASKS[name]
        items = load_task(name, limits.get(name, DEFAULT_LIMITS[name]))
        if uncached_items(args, name, items):
            collection = await collect_task(url, task, items, n=args.max_n, max_tokens=task.max_tokens,
                                            concurrency=args.concurrency, raw=raw_path(args.out, name))
            log.info("%s: %d collected, %d failed, %.0f s", name, collection.collected,
                     collection.failed, collection.seconds)
            log_run(args.out, collection, url, spawned)
        if strategies := live_strategies(args):
            await collect_strategies(url, task, load_task(name, args.strategy_items), strategies,
                                     concurrency=args.concurrency, out=args.out, server=spawned)


def uncached_items(args: argparse.Namespace, name: str, items: list[Item]) -> int:
    """How many of a task's items have no cached candidates yet."""
    done = cached_ids(raw_path(args.out, name), args.max_n, TASKS[name].max_tokens)
    return sum(item.id not in done for item in items)


def uncached(args: argparse.Namespace, limits: dict[str, int]) -> int:
    """How many requested items and live-strategy answers are not in the cache yet."""
    count = 0
    for name in args.tasks:
        count += uncached_items(args, name, load_task(name, limits.get(name, DEFAULT_LIMITS[name])))
        count += uncached_answers(args.out, TASKS[name], load_task(name, args.strategy_items),
                                  live_strategies(args))
    return count


def collect(args: argparse.Namespace, limits: dict[str, int]) -> None:
    """Collect against --url, or against a server started for the run and stopped after it."""
    if uncached(args, limits) == 0:
        log.info("every requested item is cached under %s; no server needed", args.out / "quality_raw")
        return
    if args.url is not None:
        asyncio.run(collect_all(args, args.url, limits, None))
        return
    mode = "enforce-eager" if args.enforce_eager else "compiled"
    port = args.port or free_port()
    command = whetstone_command(port, (), args.enforce_eager)
    with spawned(command, f"http://127.0.0.1:{port}", args.out / "quality_raw" / "server.log") as url:
        asyncio.run(collect_all(args, url, limits, f"spawned, {mode}"))


def task_reports(args: argparse.Namespace, limits: dict[str, int]) -> list[TaskReport]:
    """One report per task, from its cached records (of the first `limit` items when one is given)."""
    reports = []
    for name in args.tasks:
        records = read_records(raw_path(args.out, name))
        if name in limits:
            wanted = {item.id for item in load_task(name, limits[name])}
            records = [r for r in records if r["id"] in wanted]
        items = graded_items(records, TASKS[name], args.max_n)
        if not items:
            log.warning("%s: no cached items in %s; skipped", name, raw_path(args.out, name))
            continue
        reports.append(TaskReport.build(TASKS[name], records, items, sizes_up_to(args.max_n),
                                        args.subsets, args.seed))
    return reports


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or only its report) and write OUT/quality.md with its plots."""
    args = build_parser().parse_args(argv)
    log_progress()
    limits = parse_limits(args.limit)
    started = time.perf_counter()
    if not args.report_only:
        collect(args, limits)
        log.info("collection took %.0f s", time.perf_counter() - started)
    reports = task_reports(args, limits)
    if not reports:
        log.error("nothing to report")
        return 1
    extra = pareto_sections(reports, args.out, live_strategies(args), args.strategy_items)
    path = write_report(reports, args.out, runs_path(args.out), extra)
    log.info("wrote %s", path)
    return 0

