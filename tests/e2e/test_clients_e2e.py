"""The client library, `whetstone load` and `whetstone ab` against the real engine (tiny runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clients.client import WhetstoneClient
from training.cli import build_parser

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def run_cli(*argv: str) -> int:
    """Parse `whetstone ARGV` as the console script does and run the command."""
    args = build_parser().parse_args(list(argv))
    code: int = args.run(args)
    return code


def test_client_reads_candidates_and_streams(server_url: str) -> None:
    with WhetstoneClient(server_url, timeout=300) as client:
        assert client.health()
        result = client.chat(HELLO, max_tokens=16, sharpening={"n": 2, "seed": 1, "return_candidates": True})
        streamed = client.chat(
            HELLO, max_tokens=16, temperature=0, stream=True, sharpening={"strategy": "none"}
        )
    s = result.sharpening
    assert s is not None and s.candidates is not None and len(s.candidates) == 2
    chosen = s.selected
    assert chosen is not None and chosen.text == result.text and chosen.logprob_sum <= 0
    assert result.usage is not None and result.usage.completion_tokens == s.generated_tokens
    assert streamed.text and streamed.time_to_first_token is not None


def test_load_against_the_real_engine(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    code = run_cli(
        "load",
        "--url",
        server_url,
        "--requests",
        "4",
        "--concurrency",
        "2",
        "--max-tokens",
        "16",
        "--sharpening",
        '{"n": 2}',
        "--stream",
        "--json",
        str(out),
    )
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["successful"] == 4 and summary["errors"] == 0
    assert 0 < summary["p50"] <= summary["p99"] and summary["ttft"]["p50"] > 0
    assert summary["generated_tokens"] > 0 and summary["generated_tokens_per_second"] > 0


def test_ab_against_the_real_engine(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    code = run_cli(
        "ab",
        "--url",
        server_url,
        "--dataset",
        "arithmetic",
        "--limit",
        "3",
        "--max-tokens",
        "24",
        "--concurrency",
        "2",
        "--out",
        str(out),
        "--b",
        '{"temperature": 1, "sharpening": {"n": 4, "seed": 0}}',
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for side in ("A", "B"):
        s = summary["sides"][side]
        assert s["errors"] == 0 and s["checked"] == 3 and s["lengths_estimated"] == 0
        assert s["mean_log_likelihood"] <= 0 and s["mean_length"] > 0
    record = summary["versus_baseline"]["B"]
    assert record["b_wins"] + record["ties"] + record["a_wins"] == 3
    assert {"report.md", "items.jsonl", "scores.png", "accuracy.png"} <= {p.name for p in out.iterdir()}
