"""The amortization loop on the real engine: serve with traces, distil with sharpen-sft, serve the adapter.

Two extra servers, module-scoped and started one after the other: one with --trace-dir (the data
source), then one with --lora serving the adapters trained here. A few dozen prompts and a few
optimizer steps keep the module at a few minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from openai import OpenAI

from server.amortize.adapters import model_fingerprint
from server.amortize.traces import read_traces
from tests.e2e.conftest import spawned_server

PROMPTS = 24
ENV = os.environ | {"HF_HUB_OFFLINE": "1"}


@contextmanager
def whetstone(flags: list[str], log_path: Path) -> Iterator[str]:
    """A `whetstone serve` subprocess (eager) with extra flags, stopped on exit."""
    with spawned_server(log_path, *flags) as (url, _):
        yield url


def whetstone_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a `whetstone` subcommand to its end."""
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                          env=ENV, timeout=900, check=False)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's directory: prompts, traces, adapters, server logs."""
    root = tmp_path_factory.mktemp("amortize")
    with (root / "prompts.jsonl").open("w") as out:
        for i in range(PROMPTS):
            a, b = 3 + i, 11 + 2 * i
            out.write(json.dumps({"messages": [{"role": "user", "content": f"What is {a} + {b}?"}]}) + "\n")
    return root


@pytest.fixture(scope="module")
def trained(work: Path) -> dict[str, Path]:
    """Adapters distilled while a traced server answers: one from prompts (via --url), one from its traces."""
    adapters = {"from_prompts": work / "from_prompts", "from_traces": work / "from_traces"}
    with whetstone(["--trace-dir", str(work / "traces")], work / "traced-server.log") as url:
        made = whetstone_cli("sharpen-sft", "--prompts", str(work / "prompts.jsonl"), "--url", url,
                             "--n", "4", "--max-tokens", "32", "--max-steps", "2", "--batch-size", "4",
                             "--checkpoint-every", "1", "--out", str(adapters["from_prompts"]))
    assert made.returncode == 0, made.stderr[-3000:]
    made = whetstone_cli("sharpen-sft", "--traces", str(work / "traces"), "--max-steps", "1",
                         "--batch-size", "4", "--rank", "16", "--out", str(adapters["from_traces"]))
    assert made.returncode == 0, made.stderr[-3000:]
    return adapters


@pytest.fixture(scope="module")
def adapter_url(work: Path, trained: dict[str, Path]) -> Iterator[str]:
    """A server with both adapters (started after the traced server stopped)."""
    flags = [f"--lora=sharp={trained['from_prompts']}", f"--lora=sharp16={trained['from_traces']}"]
    with whetstone(flags, work / "lora-server.log") as url:
        yield url


def test_traces_hold_every_sharpened_request(work: Path, trained: dict[str, Path]) -> None:
    records = list(read_traces(work / "traces"))
    assert len(records) == PROMPTS
    sft_rows = [json.loads(line) for line in (trained["from_prompts"] / "sft.jsonl").read_text().splitlines()]
    by_text = {tuple(r["selected"]["token_ids"]): r for r in records}
    for row in sft_rows:
        if not row.get("dropped"):  # the SFT set holds exactly the answers the server chose and traced
            traced = by_text[tuple(row["completion_token_ids"])]
            assert traced["selected"]["logprob_sum"] == pytest.approx(row["logprob_sum"])
    record = records[0]
    assert record["strategy"] == "best_of_n"
    assert record["settings"]["sharpening"]["n"] == 4
    assert record["prompt_token_ids"] and record["selected"]["token_ids"]
    summary = whetstone_cli("traces", str(work / "traces"), "--json")
    assert summary.returncode == 0
    assert json.loads(summary.stdout)["count"] == PROMPTS


def test_sharpen_sft_writes_a_servable_adapter_with_a_card(trained: dict[str, Path], model_dir: Path) -> None:
    out = trained["from_prompts"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["bias"], config["peft_type"]) == (8, "none", "LORA")
    assert (out / "adapter_model.safetensors").stat().st_size > 100_000
    card = json.loads((out / "card.json").read_text())
    assert card["base_model_sha256"] == model_fingerprint(model_dir)
    assert card["n"] == 4 and card["steps"] == 2 and len(card["losses"]) == 2
    assert card["examples"] + card["dropped_unfinished"] == PROMPTS
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "checkpoints" / "step-000001" / "adapter_model.safetensors").is_file()
    from_traces = json.loads((trained["from_traces"] / "card.json").read_text())
    assert from_traces["hyperparameters"]["rank"] == 16 and from_traces["n"] == [4]


def test_adapters_answer_through_the_openai_sdk(adapter_url: str) -> None:
    client = OpenAI(base_url=f"{adapter_url}/v1", api_key="unused")
    models = {m.id: m for m in client.models.list()}
    assert {"sharp", "sharp16"} <= set(models)
    assert models["sharp"].model_extra["parent"] == models["sharp16"].model_extra["parent"]
    messages = [{"role": "user", "content": "What is 5 + 7?"}]
    for strategy in ("best_of_n", "none"):
        reply = client.chat.completions.create(
            model="sharp", messages=messages, max_tokens=24,  # type: ignore[arg-type]
            extra_body={"sharpening": {"strategy": strategy, "n": 4, "return_candidates": True}},
        )
        assert reply.model == "sharp"
        assert reply.choices[0].message.content
        summary = reply.model_extra["sharpening"]
        assert summary["strategy"] == strategy
        assert all(c["logprob_sum"] < 0 for c in summary["candidates"])
    text = client.completions.create(model="sharp16", prompt="12 + 30 =", max_tokens=8, temperature=0)
    assert text.model == "sharp16" and text.choices[0].text
