"""The capacity benchmark's rows, its markdown tables (ratios to greedy) and its latency plot."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.figure_blocks import FigureBlock, requote
from benchmarks.common.quoted import ROOT
from clients.stats import percentile

WAY_ORDER = ("greedy", "default", "full", "vllm_greedy")
RESULTS = ROOT / "benchmarks" / "results" / "capacity"
FRONT_PAGE_LEVELS = (1.0, 8.0, 64.0)  # one request at a time, saturation on AMD hosts, far past it
COLOURS = {"greedy": "tab:blue", "default": "tab:green", "full": "tab:red", "vllm_greedy": "tab:grey"}


@dataclass(frozen=True)
class Row:
    """One way at one load level: throughput, latency percentiles, likelihood, how far it sharpened."""

    way: str
    loop: str
    level: float
    requests: int
    seconds: float
    requests_per_second: float
    p50: float | None
    p90: float | None
    p99: float | None
    tokens_per_second: float
    median_logprob_sum: float | None
    sharpened: dict[str, int]  # greedy_only / partly / fully: requests by candidates that ran

    @classmethod
    def of(cls, way: str, loop: str, level: float, seconds: float, answers: list[Any]) -> Row:
        """The row of some answers collected over `seconds`."""
        latencies = [a.latency for a in answers]
        scores = [a.logprob_sum for a in answers if a.logprob_sum is not None]
        ran = [a.candidates_ran for a in answers]
        most = max(ran, default=1)

        def pct(q: float) -> float | None:
            return percentile(latencies, q) if latencies else None

        return cls(
            way, loop, level, len(answers), seconds, len(answers) / seconds,
            pct(50), pct(90), pct(99), sum(a.generated_tokens for a in answers) / seconds,
            statistics.median(scores) if scores else None,
            {
                "greedy_only": sum(1 for r in ran if r <= 1),
                "partly": sum(1 for r in ran if 1 < r < max(most, 8)),
                "fully": sum(1 for r in ran if r >= 8),
            },
        )

    def line(self) -> str:
        """A one-line log of the row."""
        return (f"{self.way} {self.loop} {self.level:g}: {self.requests} requests, "
                f"{self.requests_per_second:.3f}/s, p50 {fmt(self.p50)} p90 {fmt(self.p90)} "
                f"p99 {fmt(self.p99)}, LL {fmt(self.median_logprob_sum)}, {self.sharpened}")


def refused(result: dict[str, Any], row: dict[str, Any]) -> int:
    """Requests of `row` the server refused with 429 (its admission limit was full)."""
    prefix = f"{row['way']} {row['loop']} {row['level']}:"
    return sum(1 for f in result["failures"] if f.startswith(prefix) and "429" in f)


def other_failures(result: dict[str, Any]) -> list[str]:
    """Failures other than the admission limit's 429s."""
    return [f for f in result["failures"] if "429" not in f]


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell, or '-'."""
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    """value / base as '1.23x', or '-'."""
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def table(result: dict[str, Any], loop: str) -> list[str]:
    """A markdown table of one loop's rows, each way beside greedy's row at the same level."""
    rows = result["rows"]
    unit = "concurrency" if loop == "closed" else "offered req/s"
    lines = [
        f"| {unit} | way | req/s | vs greedy | p50 s | p90 s | p99 s | p90 vs greedy | tokens/s "
        "| median LL | greedy only / partly / fully sharpened | 429s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    levels = sorted({r["level"] for r in rows if r["loop"] == loop})
    for level in levels:
        here = {r["way"]: r for r in rows if r["loop"] == loop and r["level"] == level}
        greedy = here.get("greedy")
        for way in [w for w in WAY_ORDER if w in here]:
            r = here[way]
            s = r["sharpened"]
            lines.append(
                f"| {level:g} | {way} | {r['requests_per_second']:.3f} "
                f"| {ratio(r['requests_per_second'], greedy and greedy['requests_per_second'])} "
                f"| {fmt(r['p50'])} | {fmt(r['p90'])} | {fmt(r['p99'])} "
                f"| {ratio(r['p90'], greedy and greedy['p90'])} | {r['tokens_per_second']:.1f} "
                f"| {fmt(r['median_logprob_sum'], 1)} | {s['greedy_only']} / {s['partly']} / {s['fully']} "
                f"| {refused(result, r)} |"
            )
    return lines


def headline(result: dict[str, Any], levels: tuple[float, ...] | None = None) -> str:
    """The closed-loop rows (those at `levels`, else all) as pages quote them: each way's req/s and
    p90 latency against greedy's."""
    closed = [r for r in result["rows"] if r["loop"] == "closed" and (levels is None or r["level"] in levels)]
    ways = [w for w in WAY_ORDER if any(r["way"] == w for r in closed)]
    names = {"greedy": "greedy", "default": "default (spare)", "full": "full sharpening (wait)",
             "vllm_greedy": "vLLM's server, greedy"}
    lines = [
        "| concurrency | " + " | ".join(names[w] for w in ways) + " |",
        "|---:|" + "---|" * len(ways),
    ]
    for level in sorted({r["level"] for r in closed}):
        here = {r["way"]: r for r in closed if r["level"] == level}
        greedy = here.get("greedy")
        cells = []
        for way in ways:
            r = here.get(way)
            if r is None:
                cells.append("-")
                continue
            cell = f"{r['requests_per_second']:.2f} req/s, p90 {fmt(r['p90'], 1)} s"
            if greedy is not None and way != "greedy":
                cell += (f" ({ratio(r['requests_per_second'], greedy['requests_per_second'])}, "
                         f"{ratio(r['p90'], greedy['p90'])})")
            if refused(result, r):
                cell += f"; {refused(result, r)} refused (429)"
            cells.append(cell)
        lines.append(f"| {level:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Closed loop, {result['settings']['seconds']:g} s per row (3x at concurrency 1), max_tokens "
        f"{result['settings']['max_tokens']}; in brackets: requests/s and p90 latency against greedy's "
        f"at the same concurrency. {result['machine']}; {result['date']}; `make bench-capacity` "
        "([full tables and plot](benchmarks/results/capacity/capacity.md)).",
    ]
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    """The report: what ran where, then the closed- and open-loop tables."""
    settings = result["settings"]
    lines = [
        "# Capacity: latency against offered load",
        "",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}; command: `{result['command'].strip()}`",
        f"- {settings['seconds']:g} s per row (3x at concurrency 1), max_tokens {settings['max_tokens']}, "
        "the load generator's "
        "built-in prompts; whetstone compiled" + (" (eager)" if settings["enforce_eager"] else "")
        + " with its defaults (load policy spare, capacity 8, deadline 0.5)",
        "- ways: greedy = `temperature 0, strategy none`; default = nothing sent (greedy + 7 at 0.4, "
        "spare policy); full = `sharpening.load: wait` (every candidate, the default before the "
        "policy); vllm_greedy = vLLM's own server at temperature 0 with whetstone's engine settings",
        "- latency counts from when a request was due (open loop: queueing included); LL is the "
        "answers' raw log-likelihood; 'sharpened' counts requests by how many candidates ran "
        "(1: greedy only; 8: all); 429s: requests refused by the admission limit (`--max-inflight-"
        "candidates` 256: a request that waits for 8 candidates holds 8 of it, a `spare` one 1)",
        "",
        "## Closed loop (requests kept in flight)",
        "",
        *table(result, "closed"),
        "",
        "## Open loop (Poisson arrivals)",
        "",
        *table(result, "open"),
        "",
        "![latency against load](capacity.png)",
        "",
    ]
    if other_failures(result):
        lines += ["## Failures", "", *(f"- {f}" for f in other_failures(result)[:20]), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """p50 (dashed) and p90 (solid) latency against throughput, one line per way, both loops."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, loop in zip(axes, ("closed", "open"), strict=True):
        for way in WAY_ORDER:
            rows = sorted((r for r in result["rows"] if r["way"] == way and r["loop"] == loop),
                          key=lambda r: r["level"])
            if not rows:
                continue
            x = [r["requests_per_second"] for r in rows]
            ax.plot(x, [r["p90"] for r in rows], "o-", color=COLOURS[way], label=f"{way} p90")
            ax.plot(x, [r["p50"] for r in rows], "o--", color=COLOURS[way], alpha=0.5, label=f"{way} p50")
            for r in rows:
                ax.annotate(f"{r['level']:g}", (r["requests_per_second"], r["p90"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        label = "concurrency" if loop == "closed" else "offered req/s"
        ax.set(title=f"{loop} loop (labels: {label})", xlabel="requests/s served", ylabel="latency (s)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(result["machine"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path, result: dict[str, Any] | None = None) -> None:
    """Write capacity.json (when given a result), then capacity.md and capacity.png from it."""
    data = out / "capacity.json"
    if result is not None:
        data.write_text(json.dumps(result, indent=1) + "\n")
    result = json.loads(data.read_text())
    (out / "capacity.md").write_text(markdown(result))
    plot(result, out / "capacity.png")
    requote(out, BLOCKS)


def front_page_headline(result: dict[str, Any]) -> str:
    """The headline at three load levels, as the README quotes it."""
    return headline(result, FRONT_PAGE_LEVELS)


# the closed-loop headline (block `capacity`): the README at three levels, the docs at every one
BLOCKS = (
    FigureBlock("capacity", RESULTS / "capacity.json", front_page_headline, (ROOT / "README.md",)),
    FigureBlock("capacity", RESULTS / "capacity.json", headline,
                (ROOT / "docs" / "performance.md", ROOT / "docs" / "load.md")),
)
