"""`whetstone ab`: side planning, the runner in-process, and the report it writes."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.ab import (
    DEFAULT_A,
    DEFAULT_B,
    DEFAULT_DATASET,
    plan_sides,
    request_fields,
    run_ab,
    run_ab_command,
)
from clients.checkers import exact_match, numeric_match
from clients.comparison import Output, output_from
from clients.datasets import builtin_dataset
from clients.items import InputError, Item
from clients.results import parse_completion
from clients.stats import wilson_interval
from server.app import create_app
from server.config import Settings
from tests.clients.conftest import AsgiClientFactory, ServerFactory
from tests.fakes import FakeEngine, Script
from training.cli import build_parser

REPORT_FILES = {"report.md", "items.jsonl", "summary.json", "scores.png", "length_vs_score.png"}


def sharpened_is_right() -> FakeEngine:
    """Greedy (candidate 0) says 't0 ' with log-likelihood -6; best-of-n picks 't0 t1 ' at -0.3."""
    return FakeEngine(scripts=[Script([-3.0, -3.0]), Script([-0.1, -0.1, -0.1])])


def run_cli(*argv: str) -> int:
    """Parse `whetstone ARGV` as the console script does and run the command."""
    args = build_parser().parse_args(list(argv))
    code: int = args.run(args)
    return code


def write_items(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A JSONL file of `rows`."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_request_fields_are_max_tokens_then_the_config() -> None:
    assert request_fields(DEFAULT_A, 64) == {
        "max_tokens": 64, "temperature": 0.0, "sharpening": {"strategy": "none"}}
    assert request_fields({"max_tokens": 8}, 64) == {"max_tokens": 8}
    with pytest.raises(InputError, match="messages"):
        request_fields({"messages": []}, None)


def test_plan_sides_for_ab_and_sweep() -> None:
    sides = plan_sides(DEFAULT_A, DEFAULT_B, 32)
    assert [s.name for s in sides] == ["A", "B"]
    assert sides[1].fields == {"max_tokens": 32}  # B by default: a plain request, the server decides
    sweep = plan_sides(DEFAULT_A, DEFAULT_B, 32, [1, 4])
    assert [(s.name, s.n) for s in sweep] == [("A", None), ("B n=1", 1), ("B n=4", 4)]
    assert [s.fields["sharpening"]["n"] for s in sweep[1:]] == [1, 4]
    plain = plan_sides(DEFAULT_A, {"temperature": 1.0}, 32, [2])  # no sharpening object: server defaults
    assert plain[1].fields["sharpening"] == {"n": 2}
    with pytest.raises(InputError, match="sharpening"):
        plan_sides(DEFAULT_A, {"sharpening": "best_of_n"}, 32, [2])
    assert DEFAULT_B == {}  # the defaults are not modified


async def test_run_ab_scores_both_sides(asgi_client: AsgiClientFactory) -> None:
    items = [Item(prompt="q1", answer="1"), Item(prompt="q2", answer="0"), Item(prompt="q3")]
    sides = plan_sides(DEFAULT_A, {"sharpening": {"n": 2}}, 16)
    done: list[Output] = []
    async with asgi_client(sharpened_is_right()) as client:
        outputs = await run_ab(client, items, sides, concurrency=2, on_done=done.append)
    assert len(done) == 6
    a, b = outputs["A"], outputs["B"]
    assert [o.text for o in a] == ["t0 "] * 3 and [o.text for o in b] == ["t0 t1 "] * 3
    assert [o.correct for o in a] == [False, True, None]
    assert [o.correct for o in b] == [True, False, None]
    assert a[0].log_likelihood == pytest.approx(-6.0) and b[0].log_likelihood == pytest.approx(-0.3)
    assert (a[0].num_tokens, b[0].num_tokens) == (2, 3)
    assert not a[0].length_estimated and b[0].generated_tokens == 5


async def test_run_ab_reads_exact_lengths_from_the_summary_and_keeps_errors(
    asgi_client: AsgiClientFactory,
) -> None:
    items = [Item(prompt="q", answer="Paris")]
    sides = plan_sides({"sharpening": {"strategy": "none"}}, {"temperature": 9}, None)
    async with asgi_client() as client:
        outputs = await run_ab(client, items, sides, check=exact_match)
    a, b = outputs["A"][0], outputs["B"][0]
    assert not a.length_estimated and a.num_tokens == 3  # "t0 t1 " and the stop token
    assert a.logprob_sum is not None and a.log_likelihood == a.selected_score
    assert a.correct is False
    assert b.error is not None and b.error.startswith("http_400")


# Every candidate waited for: under the default 'spare' load policy, which extras a plain request
# gets depends on how busy the fake engine is, so the selection would vary from run to run.
WAIT_FOR_EVERY_CANDIDATE = {"load_policy": "wait"}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to an app over ASGI and keeps each request's JSON body."""

    def __init__(self, engine: FakeEngine) -> None:
        self.app = httpx.ASGITransport(app=create_app(Settings(**WAIT_FOR_EVERY_CANDIDATE), engine=engine))
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the body, then answer as the app does."""
        self.bodies.append(json.loads(request.content))
        return await self.app.handle_async_request(request)


def test_ab_without_arguments_compares_greedy_with_the_servers_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    transport = RecordingTransport(sharpened_is_right())
    args = build_parser().parse_args(["ab"])
    assert run_ab_command(args, transport) == 0
    items = len(builtin_dataset(DEFAULT_DATASET))
    assert len(transport.bodies) == 2 * items
    greedy = [b for b in transport.bodies if b.get("temperature") == 0.0]
    plain = [b for b in transport.bodies if "temperature" not in b]
    assert len(greedy) == len(plain) == items
    assert all(b["sharpening"] == {"strategy": "none"} for b in greedy)
    assert all("sharpening" not in b for b in plain)
    summary = json.loads((tmp_path / "ab-report" / "summary.json").read_text())
    assert summary["configs"] == {"A": {"max_tokens": 128, "temperature": 0.0,
                                        "sharpening": {"strategy": "none"}},
                                  "B": {"max_tokens": 128}}
    a, b = summary["sides"]["A"], summary["sides"]["B"]
    assert a["items"] == b["items"] == items and a["errors"] == b["errors"] == 0
    assert a["mean_log_likelihood"] == pytest.approx(-6.0)  # one greedy decode
    assert b["mean_log_likelihood"] == pytest.approx(-0.3)  # the default's best of several
    printed = capsys.readouterr().out
    assert printed.startswith("A ") and "\nB " in printed and "vs A:" in printed


def test_ab_command_writes_the_report(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_items(tmp_path / "items.jsonl",
                       [{"prompt": f"question {i}", "answer": "1"} for i in range(6)])
    out = tmp_path / "report"
    with serve(sharpened_is_right()) as url:
        code = run_cli("ab", "--url", url, "--data", str(data), "--out", str(out),
                       "--b", '{"temperature": 1, "sharpening": {"strategy": "best_of_n", "n": 2}}',
                       "--max-tokens", "8", "--concurrency", "3", "--checker", "numeric")
    assert code == 0
    assert REPORT_FILES | {"accuracy.png"} == {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    a, b = summary["sides"]["A"], summary["sides"]["B"]
    assert (a["accuracy"], b["accuracy"]) == (0.0, 1.0)
    assert (b["ci_low"], b["ci_high"]) == pytest.approx(wilson_interval(6, 6))
    assert a["ci_high"] == pytest.approx(0.3903, abs=1e-4)
    assert a["mean_log_likelihood"] == pytest.approx(-6.0)
    assert b["mean_log_likelihood"] == pytest.approx(-0.3)
    assert (a["mean_length"], b["mean_length"]) == (2.0, 3.0)
    assert summary["versus_baseline"]["B"] == {
        "b_wins": 6, "ties": 0, "a_wins": 0, "undecided": 0,
        "by_correctness": 6, "by_log_likelihood": 0}
    assert summary["configs"]["B"]["sharpening"] == {"strategy": "best_of_n", "n": 2}
    assert summary["run"]["items"] == 6 and summary["run"]["checker"] == "numeric"
    rows = read_jsonl(out / "items.jsonl")
    assert len(rows) == 6 and rows[0]["prompt"] == "question 0" and rows[0]["answer"] == "1"
    assert rows[0]["verdicts"] == {"B": "b"}
    assert rows[0]["outputs"]["B"]["log_likelihood"] == pytest.approx(-0.3)
    report = (out / "report.md").read_text()
    assert "| B | 1.000 (6/6) |" in report and "![accuracy](accuracy.png)" in report
    assert "Examples where the sides disagree" in report
    printed = capsys.readouterr().out
    assert "vs A: 6 wins, 0 ties, 0 losses" in printed and "report.md" in printed


def test_ab_without_answers_judges_by_log_likelihood(serve: ServerFactory, tmp_path: Path) -> None:
    data = write_items(tmp_path / "items.jsonl",
                       [{"messages": [{"role": "user", "content": "hi"}]}] * 3)
    out = tmp_path / "report"
    with serve(sharpened_is_right(), **WAIT_FOR_EVERY_CANDIDATE) as url:
        code = run_cli("ab", "--url", url, "--data", str(data), "--out", str(out))
    assert code == 0
    assert {p.name for p in out.iterdir()} == REPORT_FILES  # no accuracy plot without answers
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sides"]["B"]["accuracy"] is None
    assert summary["versus_baseline"]["B"]["b_wins"] == 3
    assert summary["versus_baseline"]["B"]["by_log_likelihood"] == 3


def test_ab_sweep_over_n(serve: ServerFactory, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with serve(sharpened_is_right()) as url:
        code = run_cli("ab", "--url", url, "--dataset", "arithmetic", "--limit", "4",
                       "--sweep-n", "1,2,4", "--out", str(out), "--max-tokens", "8")
    assert code == 0
    assert REPORT_FILES | {"accuracy.png", "sweep.png"} == {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sweep"] == [{"n": 1, "side": "B n=1"}, {"n": 2, "side": "B n=2"},
                                {"n": 4, "side": "B n=4"}]
    lls = [summary["sides"][p["side"]]["mean_log_likelihood"] for p in summary["sweep"]]
    assert lls == pytest.approx([-6.0, -0.3, -0.3])
    tokens = [summary["sides"][p["side"]]["mean_generated_tokens"] for p in summary["sweep"]]
    assert tokens[0] < tokens[1] < tokens[2]
    assert summary["sides"]["A"]["items"] == 4
    rows = read_jsonl(out / "items.jsonl")
    assert set(rows[0]["outputs"]) == {"A", "B n=1", "B n=2", "B n=4"}
    assert "## Sweep over N" in (out / "report.md").read_text()


def test_ab_command_failures(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    with serve(api_key="right") as url:
        code = run_cli("ab", "--url", url, "--limit", "2", "--out", str(out),
                       "--max-retries", "0")
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sides"]["A"]["errors"] == 2
    assert run_cli("ab", "--data", str(tmp_path / "missing.jsonl")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run_cli("ab", "--a", '{"prompt": "x"}', "--out", str(out)) == 2
    assert run_cli("ab", "--endpoint", "completions") == 2


@pytest.mark.parametrize(
    "argv",
    [["--sweep-n", "1,0"], ["--sweep-n", ","], ["--a", "3"], ["--dataset", "nope"],
     ["--checker", "fuzzy"], ["--data", "x.jsonl", "--dataset", "arithmetic"]],
)
def test_ab_rejects_bad_flags(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ab", *argv])
    assert exit_info.value.code == 2


def test_output_estimates_length_when_the_server_reports_none() -> None:
    completion = parse_completion({
        "id": "x", "model": "m", "choices": [{"index": 0, "text": "twelve chars", "finish_reason": "stop"}],
        "sharpening": {"strategy": "none", "n": 1, "selected_score": -1.5},
    }, latency=0.1)
    out = output_from(completion, "12", numeric_match)
    assert out.length_estimated and out.num_tokens == 3 and out.logprob_sum is None
    assert out.correct is False


def test_ab_html_report_is_one_self_contained_page(serve: ServerFactory, tmp_path: Path) -> None:
    data = write_items(tmp_path / "items.jsonl",
                       [{"prompt": f"question {i} <b>|", "answer": "1"} for i in range(3)])
    out = tmp_path / "report"
    with serve(sharpened_is_right()) as url:
        code = run_cli("ab", "--url", url, "--data", str(data), "--out", str(out), "--html",
                       "--b", '{"temperature": 1, "sharpening": {"strategy": "best_of_n", "n": 2}}',
                       "--max-tokens", "8", "--checker", "numeric")
    assert code == 0
    assert REPORT_FILES | {"accuracy.png", "report.html"} == {p.name for p in out.iterdir()}
    page = (out / "report.html").read_text()
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert {name for name, _ in images} == {"scores", "length_vs_score", "accuracy"}
    for name, encoded in images:  # the very PNGs written beside the report
        assert base64.b64decode(encoded) == (out / f"{name}.png").read_bytes()
    assert "<td>B</td><td>1.000 (3/3)</td>" in page
    assert "question 0 &lt;b&gt;|" in page and "<b>|" not in page  # item text is escaped
    assert "3 items from <code>" in page  # the data file as code, not in backticks
    assert "src=\"http" not in page and "href=" not in page  # nothing to fetch
    markdown = (out / "report.md").read_text()
    assert "question 0 <b>\\|" in markdown and "![scores](scores.png)" in markdown
