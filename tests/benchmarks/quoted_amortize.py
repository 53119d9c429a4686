"""The figures docs/amortization_results.md quotes from the amortization
runs (see quoted_figures.py): the main run (benchmarks/results/amortize.md, raw answers in
amortize_raw/) and the longer RL runs (amortize_rl64/, amortize_rl128/). What the raw answers give
directly (answers in common, medians, letters) is computed from them; accuracies, intervals and
paired differences are the tables and lines the benchmark generated."""

from __future__ import annotations

import statistics

from benchmarks.common.datasets import TASKS
from benchmarks.common.quoted import Quote
from clients.checkers import extract_answer
from tests.benchmarks.quoted_sources import f2, found_in, jsonl, line_after, number, result_json, table_cell

RESULTS = "docs/amortization_results.md"
MAIN = "amortize.md"
RL64 = "amortize_rl64/amortize.md"
RL128 = "amortize_rl128/amortize.md"
SOURCE = f"benchmarks/results/{MAIN}"


def cell(name: str, task: str, way: str, column: str) -> str:
    """A cell of a task's table in an amortization result."""
    return table_cell(name, f"## {task}", way, column)


def answers(task: str, way: str, run: str = "amortize_raw") -> dict[str, dict[str, object]]:
    """A way's raw answers in a run, by item."""
    return {r["item"]: r for r in jsonl(f"{run}/{task}.jsonl") if r["method"] == way}


def row(task: str, way: str, last: str, name: str = MAIN) -> tuple[str, ...]:
    """A page's table row: accuracy, its interval, the median base log-likelihood, and `last`."""
    return (
        cell(name, task, way, "accuracy").split()[0],
        cell(name, task, way, "95% interval").rstrip("%"),
        cell(name, task, way, "its median"),
        cell(name, task, way, last),
    )


def rl_row(task: str, way: str, merged: bool = False) -> tuple[str, ...]:
    """An RL table row: accuracy, interval, median, mean latency (and the merged model's)."""
    found = row(task, way, "latency / answer")
    if merged:
        found += (cell(MAIN, task, "rl-a4 merged sample", "latency / answer"),)
    return found


def paired(name: str, task: str, comparison: str) -> tuple[str, str, str]:
    """A paired difference line ('- A vs B: +8.0 points (+2.3 to +13.7)'): difference, interval."""
    line = line_after(name, f"## {task}", f"- {comparison}: ")
    difference, low, high = (number(line.split(": ", 1)[1], k) for k in range(3))
    return difference, low, high


def excludes_zero(found: tuple[str, str, str]) -> bool:
    """Whether a paired interval excludes 0."""
    return float(found[1]) > 0 or float(found[2]) < 0


def design() -> tuple[str, ...]:
    """N, training prompts and evaluation items, the same for both tasks."""
    (meta,) = {
        (tuple(m["n"]), m["train"], m["eval"])
        for m in (result_json(f"amortize_raw/{task}.meta.json") for task in ("arithmetic", "arc_easy"))
    }
    return *map(str, meta[0]), str(meta[1]), str(meta[2])


def distilled() -> tuple[str, ...]:
    """The SFT-8 adapter's sample against base best-of-8 and a base sample (paired), the items
    whose answer is word for word best-of-8's, of all, and best-of-8's tokens over the sample's."""
    adapter, base = answers("arithmetic", "sft-8 sample"), answers("arithmetic", "base best-of-8")
    same = sum(adapter[i]["token_ids"] == base[i]["token_ids"] for i in adapter)
    tokens = statistics.fmean(r["generated_tokens"] for r in base.values()) / statistics.fmean(
        r["generated_tokens"] for r in adapter.values()
    )
    return (
        *paired(MAIN, "arithmetic", "sft-8 sample vs base best-of-8"),
        *(
            k.lstrip("+") if i == 0 else k
            for i, k in enumerate(paired(MAIN, "arithmetic", "sft-8 sample vs base sample"))
        ),
        str(same),
        str(len(adapter)),
        f"{tokens:.1f}",
    )


def lora_latency() -> tuple[str, ...]:
    """The SFT-8 adapter's and base best-of-8's median latency per answer, then their means."""
    ways = [answers("arithmetic", way) for way in ("sft-8 sample", "base best-of-8")]
    latencies = [[r["latency"] for r in found.values()] for found in ways]
    return *(f2(statistics.median(x)) for x in latencies), *(f2(statistics.fmean(x)) for x in latencies)


def objective() -> tuple[str, ...]:
    """The alpha-4 adapter's sample against a base sample: median base log-likelihoods on both
    tasks; the accuracy gains on arithmetic (alpha 4, alpha 2: only the second excluding 0) and
    arc_easy; the gaps to base best-of-8 (arithmetic both excluding 0, arc_easy including it)."""
    gains = [paired(MAIN, "arithmetic", f"{a} sample vs base sample") for a in ("rl-a4", "rl-a2")]
    assert [excludes_zero(g) for g in gains] == [False, True]
    arc = paired(MAIN, "arc_easy", "rl-a4 sample vs base sample")
    gaps = [paired(MAIN, "arithmetic", f"{a} sample vs base best-of-8") for a in ("rl-a4", "rl-a2")]
    arc_gap = paired(MAIN, "arc_easy", "rl-a4 sample vs base best-of-8")
    assert all(excludes_zero(g) for g in gaps) and not excludes_zero(arc_gap)
    return (
        *(
            cell(MAIN, t, w, "its median")
            for t in ("arithmetic", "arc_easy")
            for w in ("rl-a4 sample", "base sample")
        ),
        gains[0][0],
        gains[1][0],
        *arc,
        gaps[0][0],
        gaps[1][0],
        arc_gap[0],
    )


def favourite_letter() -> tuple[str, str]:
    """arc_easy: the alpha-4 adapter's samples that answer C, and the items."""
    found = answers("arc_easy", "rl-a4 sample")
    pattern = TASKS["arc_easy"].answer_pattern
    return str(sum(extract_answer(str(r["text"]), pattern) == "C" for r in found.values())), str(len(found))


def longer() -> tuple[str, ...]:
    """64 steps: the sample's median, accuracy and interval; its gain over a base sample with the
    interval, over the SFT adapter, and its gap to base best-of-8 (interval including 0); the
    merged and LoRA-served mean latencies."""
    task, way = "arithmetic", "rl-a4 sample"
    gap = paired(RL64, task, "rl-a4 sample vs base best-of-8")
    assert not excludes_zero(gap) and float(gap[0]) < 0
    return (
        cell(RL64, task, way, "its median"),
        number(cell(RL64, task, way, "accuracy")),
        cell(RL64, task, way, "95% interval").rstrip("%"),
        *paired(RL64, task, "rl-a4 sample vs base sample"),
        paired(RL64, task, "rl-a4 sample vs sft-8 sample")[0],
        *gap,
        number(cell(RL64, task, "rl-a4 merged sample", "latency / answer")),
        number(cell(RL64, task, way, "latency / answer")),
    )


ARITHMETIC_ROWS = (
    ("base greedy", "base greedy"),
    ("base, one sample at T=1", "base sample"),
    ("base best-of-8", "base best-of-8"),
    ("base best-of-32", "base best-of-32"),
    ("adapter from best-of-8, one sample at T=1", "sft-8 sample"),
    ("adapter from best-of-32, one sample at T=1", "sft-32 sample"),
)
RL_ROWS = {
    "arithmetic": (
        ("RL adapter, alpha 4, one sample | {} ({}) | {} | {} (LoRA), {} (merged)", "rl-a4 sample", True),
        ("RL adapter, alpha 2, one sample | {} ({}) | {} | {} (LoRA)", "rl-a2 sample", False),
        ("base `smc`, alpha 4 (n = 8) | {} ({}) | {} | {}", "base smc a4", False),
        ("base `power`, alpha 4 (n = 8) | {} ({}) | {} | {}", "base power a4", False),
    ),
    "arc_easy": (
        ("base, one sample at T=1 | {} ({}) | {} | {}", "base sample", False),
        ("base best-of-8 | {} ({}) | {} | {}", "base best-of-8", False),
        ("RL adapter, alpha 4, one sample | {} ({}) | {} | {} (LoRA), {} (merged)", "rl-a4 sample", True),
        ("RL adapter, alpha 2, one sample | {} ({}) | {} | {} (LoRA)", "rl-a2 sample", False),
        ("base `smc`, alpha 4 (n = 8) | {} ({}) | {} | {}", "base smc a4", False),
        ("base `power`, alpha 4 (n = 8) | {} ({}) | {} | {}", "base power a4", False),
    ),
}

AMORTIZATION: list[Quote] = [
    Quote(
        RESULTS,
        "**RL-sharpening** (`sharpen-rl`): on this model and these {} prompts",
        f"benchmarks/results/{RL128}",
        lambda: (str(result_json("amortize_rl128/amortize_raw/arithmetic.meta.json")["train"]),),
    ),
    Quote(
        RESULTS,
        "N = {} and {}, {} training prompts per task disjoint from the {} evaluation items",
        "benchmarks/results/amortize_raw/arithmetic.meta.json",
        design,
    ),
    *(
        Quote(
            RESULTS,
            f"| {label} | {{}} ({{}}) | {{}} | {{}} |",
            SOURCE,
            lambda way=way: row("arithmetic", way, "generated tokens / answer"),
        )
        for label, way in ARITHMETIC_ROWS
    ),
    Quote(
        RESULTS,
        "**not reached**: {} points, paired interval {} to {}, so not ruled out either. Distillation "
        "does move the sampling distribution towards the sharpened one: the adapter's sample is {} "
        "points better than the base model's sample (paired interval {} to {}), the base model finds "
        "it far more likely, and it is word for word best-of-8's answer on {} of {} items, for {}x "
        "fewer generated tokens",
        "benchmarks/results/amortize_raw/arithmetic.jsonl",
        distilled,
    ),
    Quote(
        RESULTS,
        "{} s median per answer against {} s for base best-of-8 (means {} s and {} s)",
        "benchmarks/results/amortize_raw/arithmetic.jsonl",
        lora_latency,
    ),
    *(
        Quote(
            RESULTS,
            f"| {text} |",
            SOURCE,
            lambda task=task, way=way, merged=merged: rl_row(task, way, merged),
        )
        for task, rows in RL_ROWS.items()
        for text, way, merged in rows
    ),
    Quote(
        RESULTS,
        "far likelier under the base model than a base sample (arithmetic {} against {}; arc_easy {} against "
        "{}, as likely as best-of-8's answers), and more accurate (arithmetic {} and {} points, the second "
        "interval excluding 0; arc_easy {} at alpha 4, interval {} to {}). At 24 steps they stay "
        "below base best-of-8 (arithmetic {} and {} points, both intervals excluding 0; arc_easy {}, "
        "interval including 0)",
        SOURCE,
        objective,
    ),
    Quote(
        RESULTS,
        "On arc_easy the alpha-4 adapter answers C on {} of {} items",
        "benchmarks/results/amortize_raw/arc_easy.jsonl",
        favourite_letter,
    ),
    Quote(
        RESULTS,
        "the sample's median base log-likelihood is {} and its accuracy {} % ({}): {} points over a "
        "base sample ({} to {}), {} over the SFT adapter, and {} under base best-of-8 ({} to {}), so "
        "the goal (one sample as accurate as base best-of-8) is not reached, nor ruled out; merged it "
        "answers in {} s against {} s LoRA-served",
        f"benchmarks/results/{RL64}",
        longer,
    ),
    Quote(
        RESULTS,
        "(quarter means {}, {}, {}, {}), the sample's median base log-likelihood is {} and its accuracy {} % "
        "(-{} under base best-of-8, {} to {})",
        f"benchmarks/results/{RL128}",
        lambda: (
            *found_in(RL128, r"per quarter of the run\) went ([-.\d]+), ([-.\d]+), ([-.\d]+), ([-.\d]+)"),
            table_cell(RL128, None, "rl-a4 sample", "its median"),
            number(table_cell(RL128, None, "rl-a4 sample", "accuracy")),
            *(
                k.lstrip("-") if i == 0 else k
                for i, k in enumerate(paired(RL128, "arithmetic", "rl-a4 sample vs base best-of-8"))
            ),
        ),
    ),
]
