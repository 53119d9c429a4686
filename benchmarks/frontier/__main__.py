"""The sharpening frontier: `make bench-frontier`.

Every prompt set goes through every way on one whetstone server, one request at a time, and the
returned answer's raw log-likelihood (`selected_logprob_sum`) is compared with greedy decoding's on
the same prompt. vLLM's own beam search (its OpenAI server, started after whetstone stops) anchors
the classical maximiser on a few prompts per set; its answers are cached in frontier_anchor.json.
Writes benchmarks/results/frontier.md, .json and .png.

    python -m benchmarks.frontier                       # everything (about 80 minutes on 2 cores)
    python -m benchmarks.frontier --sets unseen --anchor 0 --ways greedy default
    python -m benchmarks.frontier --sets unseen fresh novel --ways default --repeats 3 --anchor 0 \
        --out benchmarks/results/frontier_novel_a   # the default against greedy on held-out prompts
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import given_or_started_server
from benchmarks.frontier.anchor import AnchorAnswer, anchor_answers
from benchmarks.frontier.measure import measure, prompt_token_ids
from benchmarks.frontier.report import anchor_comparison, markdown, paired_plot, plot, rows
from benchmarks.frontier.ways import LP1_WAYS, WAYS, Record, prompt_sets

log = logging.getLogger("benchmarks.frontier")
HELD_OUT = ("unseen", "fresh", "novel")  # prompt sets the default was not chosen on, pooled in the report
RESULTS = Path(__file__).resolve().parent.parent / "results"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running whetstone server (default: start one, compiled)")
    parser.add_argument("--sets", nargs="+", default=["chat", "unseen", "fresh", "novel", "tasks"],
                        choices=["chat", "unseen", "fresh", "novel", "tasks"], help="prompt sets to run")
    parser.add_argument("--ways", nargs="+", help="only these ways (default: all, with --lp1 ones)")
    parser.add_argument("--per-task", type=int, default=3,
                        help="prompts per quality task in the `tasks` set (arithmetic, gsm8k, arc_easy)")
    parser.add_argument("--max-tokens", type=int, default=192, help="token limit per candidate")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time every request this many times; its latency is the median")
    parser.add_argument("--anchor", type=int, default=4,
                        help="prompts per set for vLLM's beam search (0: none; cached answers are reused)")
    parser.add_argument("--anchor-width", type=int, default=4, help="vLLM beam width")
    parser.add_argument("--refresh-anchor", action="store_true", help="beam-search again, ignoring the cache")
    parser.add_argument("--enforce-eager", action="store_true", help="start the server without torch.compile")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from --out/frontier.json, measuring nothing")
    return parser.parse_args()


def chosen_ways(names: list[str] | None) -> dict[str, dict]:
    """The ways to run, greedy always among them (every comparison is against it)."""
    every = WAYS | LP1_WAYS
    if not names:
        return every
    unknown = sorted(set(names) - set(every))
    if unknown:
        raise SystemExit(f"unknown ways {unknown}; known: {', '.join(every)}")
    return {name: every[name] for name in ["greedy", *names] if name in every}


def cached_anchor(path: Path, wanted: dict[str, list[list[int]]], refresh: bool) -> list[AnchorAnswer] | None:
    """Cached anchor answers, when they cover exactly the wanted prompts (and no refresh is asked)."""
    if refresh or not path.exists():
        return None
    answers = [AnchorAnswer(**a) for a in json.loads(path.read_text())["answers"]]
    covered = {(a.prompt_set, a.prompt) for a in answers}
    needed = {(name, i) for name, ids in wanted.items() for i in range(len(ids))}
    return answers if covered == needed else None


def main() -> None:
    """Measure, anchor, report."""
    args = parse_args()
    log_progress()
    if args.report_only:
        rewrite_report(args)
        return
    sets = {name: prompts for name, prompts in prompt_sets(args.per_task).items() if name in args.sets}
    ways = chosen_ways(args.ways)
    args.out.mkdir(parents=True, exist_ok=True)
    with given_or_started_server(args.url, args.enforce_eager, args.out / "frontier_server.log") as url:
        token_ids = prompt_token_ids(url, sets)
        records = measure(url, ways, sets, args.max_tokens, args.repeats)
    write_report(args, records, [])  # kept even if the anchor's run fails
    anchors: list[AnchorAnswer] = []
    if args.anchor > 0:
        wanted = {name: ids[: args.anchor] for name, ids in token_ids.items()}
        cache = args.out / "frontier_anchor.json"
        anchors = cached_anchor(cache, wanted, args.refresh_anchor) or []
        if not anchors:
            log.info("vLLM beam search (width %d) on %d prompts", args.anchor_width,
                     sum(map(len, wanted.values())))
            anchors = anchor_answers(wanted, args.anchor_width, args.max_tokens, 0.0,
                                     args.out / "frontier_vllm.log")
            cache.write_text(json.dumps({"width": args.anchor_width, "max_tokens": args.max_tokens,
                                         "answers": [asdict(a) for a in anchors]}, indent=1))
        write_report(args, records, anchors)


def rewrite_report(args: argparse.Namespace) -> None:
    """The report again from the saved records (the sets they cover) and the anchor cache, if any."""
    saved = json.loads((args.out / "frontier.json").read_text())
    records = [Record(**r) for r in saved["records"]]
    args.sets = list(dict.fromkeys(r.prompt_set for r in records))
    args.max_tokens = saved["max_tokens"]
    args.repeats = max((len(r.latencies) for r in records), default=1) or 1
    cache = args.out / "frontier_anchor.json"
    anchors = [AnchorAnswer(**a) for a in json.loads(cache.read_text())["answers"]] if cache.exists() else []
    write_report(args, records, anchors, saved["machine"])


def write_report(
    args: argparse.Namespace,
    records: list[Record],
    anchors: list[AnchorAnswer],
    measured_on: str | None = None,
) -> None:
    """frontier.json (every record), frontier.md (tables), frontier.png (the frontier),
    frontier_paired.png (each prompt under the default against greedy). `measured_on`: the machine
    the records come from (default: this one)."""
    measured_on = measured_on or machine()
    tables = {name: rows([r for r in records if r.prompt_set == name]) for name in args.sets}
    held_out = [name for name in HELD_OUT if name in args.sets]
    if len(held_out) > 1:
        tables[" + ".join(held_out)] = rows([r for r in records if r.prompt_set in held_out])
    (args.out / "frontier.json").write_text(json.dumps(
        {"machine": measured_on, "max_tokens": args.max_tokens, "records": [asdict(r) for r in records]},
        indent=1))
    plot(tables, anchors, args.out / "frontier.png")
    paired = "default" in {r.way for r in records}
    if paired:
        paired_plot(records, "default", args.out / "frontier_paired.png")
    parts = [
        "# The sharpening frontier", "",
        f"Machine: {measured_on}. One request at a time, max_tokens {args.max_tokens}, prompt i seeded "
        "1000 + i for every way. Log-likelihoods are the returned answer's raw sequence log-likelihood "
        "(`selected_logprob_sum`); `>= greedy` counts prompts where it is at least greedy's "
        "(within 0.1 nats: the engine is not batch-invariant, so the same tokens score a few "
        "hundredths apart in different batches). Ways ending in `lp1` select by per-token mean "
        "(length_penalty 1). Beside each latency ratio: a 95 % bootstrap interval, prompts resampled "
        "with their greedy latency." + (f" Every request was timed {args.repeats} times; its latency is "
                                        "the median." if args.repeats > 1 else ""), "",
        "![frontier](frontier.png)", "",
    ]
    if paired:
        parts += ["Per prompt, the default against greedy:", "",
                  "![default against greedy](frontier_paired.png)", ""]
    for name, table in tables.items():
        parts += [f"## {name}", "", markdown(table), ""]
    if anchors:
        parts += ["## Against vLLM's beam search", "", anchor_comparison(records, anchors), ""]
    (args.out / "frontier.md").write_text("\n".join(parts))
    log.info("wrote %s", args.out / "frontier.md")


if __name__ == "__main__":
    main()
