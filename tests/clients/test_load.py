"""`whetstone load`: the runner in-process, its summary, and the command against a real port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clients.items import Item
from clients.load import LoadPlan, Outcome, format_summary, run_load, summarize
from server.config import Settings
from server.engines import EngineError
from tests.clients.conftest import AsgiClientFactory, ServerFactory
from tests.fakes import DeadEngine, FakeEngine, Script
from training.cli import build_parser

ITEMS = [Item(prompt="one"), Item(messages=({"role": "user", "content": "two"},))]
SUMMARY_KEYS = {"requests", "successful", "errors", "errors_by_kind", "error_examples",
                "duration_seconds", "requests_per_second", "generated_tokens",
                "generated_tokens_per_second", "p50", "p90", "p99", "mean", "min", "max", "ttft"}


def run_cli(*argv: str) -> int:
    """Parse `whetstone ARGV` as the console script does and run the command."""
    args = build_parser().parse_args(list(argv))
    code: int = args.run(args)
    return code


def slow_engine() -> FakeEngine:
    """Every candidate takes about 10 ms (5 tokens of 2 ms)."""
    return FakeEngine(scripts=[Script([-0.1] * 5)], step_seconds=0.002)


async def test_closed_loop_sends_the_requested_count(asgi_client: AsgiClientFactory) -> None:
    engine = FakeEngine()
    done: list[Outcome] = []
    plan = LoadPlan(fields={"max_tokens": 8, "sharpening": {"n": 2}}, requests=7, concurrency=3)
    async with asgi_client(engine) as client:
        outcomes, seconds = await run_load(client, ITEMS, plan, done.append)
    assert len(outcomes) == 7 and done == outcomes and seconds > 0
    assert all(o.error is None and o.completion_tokens == 6 for o in outcomes)
    assert all(o.time_to_first_token is None for o in outcomes)
    assert len(engine.requests) == 14  # 7 requests x 2 candidates


async def test_duration_bounds_a_closed_loop(asgi_client: AsgiClientFactory) -> None:
    plan = LoadPlan(requests=None, duration=0.15, concurrency=2)
    async with asgi_client(slow_engine()) as client:
        started = time.perf_counter()
        outcomes, _ = await run_load(client, ITEMS, plan)
    assert time.perf_counter() - started < 3.0  # 0.15 s of requests plus those in flight
    assert 2 <= len(outcomes) < 60


@pytest.mark.parametrize("arrival", ["fixed", "poisson"])
async def test_open_loop_paces_arrivals(asgi_client: AsgiClientFactory, arrival: str) -> None:
    plan = LoadPlan(requests=6, rate=40.0, arrival=arrival, concurrency=8,  # type: ignore[arg-type]
                    fields={"stream": True})
    async with asgi_client() as client:
        outcomes, seconds = await run_load(client, ITEMS, plan)
    assert len(outcomes) == 6 and all(o.error is None for o in outcomes)
    assert all(o.time_to_first_token is not None for o in outcomes)
    if arrival == "fixed":
        assert seconds >= 5 / 40.0 - 0.01  # six arrivals 25 ms apart


async def test_open_loop_latency_counts_queueing(asgi_client: AsgiClientFactory) -> None:
    plan = LoadPlan(requests=4, rate=1000.0, arrival="fixed", concurrency=1,
                    fields={"sharpening": {"strategy": "none"}})
    async with asgi_client(slow_engine()) as client:
        outcomes, _ = await run_load(client, ITEMS, plan)
    assert max(o.latency for o in outcomes) >= 3 * 0.009  # the last one waited for three


async def test_errors_are_counted_by_kind(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(DeadEngine()) as client:
        outcomes, seconds = await run_load(client, ITEMS, LoadPlan(requests=3))
    failing = FakeEngine(fail_with=EngineError("engine core died"))
    async with asgi_client(failing) as client:
        streamed, _ = await run_load(client, ITEMS, LoadPlan(requests=2, fields={"stream": True}))
    summary = summarize(outcomes + streamed, seconds)
    assert summary["errors"] == 5 and summary["successful"] == 0
    assert summary["errors_by_kind"] == {"http_503": 3, "stream_error": 2}
    assert "engine is not serving" in summary["error_examples"]["http_503"]
    assert summary["p50"] is None and summary["ttft"] is None
    assert summary["requests_per_second"] == 0.0


async def test_a_full_server_shows_up_as_http_429(asgi_client: AsgiClientFactory) -> None:
    async with asgi_client(slow_engine(), Settings(max_inflight_requests=1)) as client:
        outcomes, seconds = await run_load(client, ITEMS, LoadPlan(requests=6, concurrency=3))
    summary = summarize(outcomes, seconds)
    assert summary["successful"] >= 1 and summary["errors_by_kind"]["http_429"] >= 1
    assert summary["successful"] + summary["errors"] == 6


def test_summary_numbers() -> None:
    outcomes = [Outcome(latency=float(i), time_to_first_token=i / 10, completion_tokens=10)
                for i in range(1, 11)]
    outcomes.append(Outcome(latency=0.1, error="http_429", message="HTTP 429: full"))
    summary = summarize(outcomes, seconds=5.0)
    assert set(summary) == SUMMARY_KEYS
    assert (summary["requests"], summary["successful"], summary["errors"]) == (11, 10, 1)
    assert summary["errors_by_kind"] == {"http_429": 1}
    assert summary["p50"] == pytest.approx(5.5) and summary["p90"] == pytest.approx(9.1)
    assert summary["p99"] == pytest.approx(9.91) and summary["mean"] == pytest.approx(5.5)
    assert summary["ttft"]["p50"] == pytest.approx(0.55)
    assert summary["requests_per_second"] == pytest.approx(2.0)
    assert summary["generated_tokens"] == 100
    assert summary["generated_tokens_per_second"] == pytest.approx(20.0)
    table = format_summary(summary, "title")
    assert "latency (s)" in table and "ttft (s)" in table and "http_429: 1" in table


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_load_command_writes_the_json_report(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load.json"
    with serve(FakeEngine(scripts=[Script([-0.2] * 3)])) as url:
        code = run_cli("load", "--url", url, "--requests", "12", "--concurrency", "3",
                       "--max-tokens", "16", "--sharpening", '{"strategy": "best_of_n", "n": 2}',
                       "--stream", "--json", str(out))
    assert code == 0
    summary = read_json(out)
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["requests"], summary["successful"], summary["errors"]) == (12, 12, 0)
    assert summary["generated_tokens"] == 12 * 2 * 3
    assert summary["generated_tokens_per_second"] == pytest.approx(
        summary["generated_tokens"] / summary["duration_seconds"])
    assert summary["requests_per_second"] == pytest.approx(12 / summary["duration_seconds"])
    assert 0 < summary["p50"] <= summary["p90"] <= summary["p99"]
    assert summary["ttft"]["p50"] > 0
    assert summary["config"]["sharpening"] == {"strategy": "best_of_n", "n": 2}
    assert summary["config"]["stream"] is True and summary["config"]["prompts"] == "built-in"
    printed = capsys.readouterr().out
    assert "12 requests" in printed and "closed loop, concurrency 3, streaming" in printed
    assert "ttft (s)" in printed


def test_load_command_open_loop_for_a_duration_from_a_prompt_file(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Once upon a time"}\n{"prompt": "The end"}\n')
    out = tmp_path / "load.json"
    with serve() as url:
        code = run_cli("load", "--url", url, "--duration", "0.3", "--rate", "30",
                       "--arrival", "fixed", "--endpoint", "completions", "--prompts",
                       str(prompts), "--temperature", "0.5", "--json", str(out))
    assert code == 0
    summary = read_json(out)
    assert 5 <= summary["requests"] <= 10 and summary["errors"] == 0
    assert summary["ttft"] is None
    assert summary["config"]["rate"] == 30 and summary["config"]["duration"] == 0.3
    assert "open loop, fixed arrivals at 30/s" in capsys.readouterr().out


def test_load_command_reports_auth_errors(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load.json"
    with serve(api_key="right") as url:
        code = run_cli("load", "--url", url, "--api-key", "wrong", "--requests", "3",
                       "--json", str(out))
    assert code == 1
    summary = read_json(out)
    assert summary["errors_by_kind"] == {"http_401": 3}
    assert "http_401: 3" in capsys.readouterr().out


def test_load_command_unreachable_server(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    code = run_cli("load", "--url", "http://127.0.0.1:9", "--requests", "2", "--json", str(out))
    assert code == 1 and read_json(out)["errors_by_kind"] == {"connection_failed": 2}


def test_load_command_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n")
    assert run_cli("load", "--prompts", str(bad)) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert run_cli("load", "--endpoint", "completions") == 2  # built-in prompts are chats
    assert "--endpoint chat" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--sharpening", "{not json"],
        ["--sharpening", "[1, 2]"],
        ["--requests", "0"],
        ["--requests", "3", "--duration", "2"],
        ["--rate", "-1"],
        ["--arrival", "bursty"],
    ],
)
def test_load_command_rejects_bad_flags(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["load", *argv])
    assert exit_info.value.code == 2


def test_console_script_prints_the_summary_not_a_line_per_request(serve: ServerFactory) -> None:
    with serve() as url:
        done = subprocess.run(
            [sys.executable, "-m", "training.cli", "load", "--url", url, "--requests", "3",
             "--max-tokens", "4"],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert "3 requests" in done.stdout
    assert "HTTP Request" not in done.stdout + done.stderr
