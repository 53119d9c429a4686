"""The amortization loop on the real engine: serve with traces, distil (SFT) and sharpen (RL) on TRL,
serve the adapters (at start and loaded while serving) and the merged model.

Three servers, module-scoped and started one after the other: a float32 one with --trace-dir
(the data source, and the reference scores for the RL reward), one with --lora and adapter
slots, one serving the merged model. A few dozen prompts, a few optimizer steps and tiny
token limits keep the module at a few minutes.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from server.adapter_checks import model_fingerprint
from tests.e2e.conftest import spawned_server
from training.traces import read_traces

PROMPTS = 24
ENV = os.environ | {"HF_HUB_OFFLINE": "1"}
KEY = "amortize-key"
RL_FLAGS = ["--max-steps", "3", "--batch-size", "4", "--num-generations", "2", "--max-tokens", "16",
            "--checkpoint-every", "1", "--alpha", "4", "--merge"]
GREEDY_PROMPTS = [f"What is {a} + {b}?" for a, b in ((2, 3), (10, 7), (21, 4), (8, 8), (13, 30))]


@contextmanager
def whetstone(flags: list[str], log_path: Path) -> Iterator[str]:
    """A `whetstone serve` subprocess (eager) with extra flags, stopped on exit."""
    with spawned_server(log_path, *flags) as (url, _):
        yield url


def whetstone_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a `whetstone` subcommand to its end."""
    return subprocess.run([sys.executable, "-m", "training.cli", *args], capture_output=True, text=True,
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


def served_scores(url: str) -> list[dict[str, Any]]:
    """Best-of-4 answers of a chat and a plain-text prompt: the prompt, selected tokens and score."""
    client = httpx.Client(base_url=url, timeout=300)
    asked: list[dict[str, Any]] = []
    for length_penalty in (0.0, 1.0):
        sharpening = {"n": 4, "seed": 7, "length_penalty": length_penalty, "return_candidates": True}
        for path, body, prompt in (
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Name a fruit."}]},
             [{"role": "user", "content": "Name a fruit."}]),
            ("/v1/completions", {"prompt": "The capital of France is"}, "The capital of France is"),
        ):
            reply = client.post(path, json=body | {"max_tokens": 24, "sharpening": sharpening}).json()
            summary = reply["sharpening"]
            selected = summary["candidates"][summary["selected_index"]]
            asked.append({"prompt": prompt, "token_ids": selected["token_ids"],
                          "length_penalty": length_penalty, "selected_score": summary["selected_score"]})
    return asked


@pytest.fixture(scope="module")
def trained(work: Path) -> dict[str, Any]:
    """While a traced float32 server answers: an SFT adapter from prompts (via --url) and the server's
    scores of some answers; after it stopped, an SFT adapter from its traces."""
    adapters = {"from_prompts": work / "from_prompts", "from_traces": work / "from_traces"}
    flags = ["--trace-dir", str(work / "traces"), "--dtype", "float32"]
    with whetstone(flags, work / "traced-server.log") as url:
        made = whetstone_cli("sharpen-sft", "--prompts", str(work / "prompts.jsonl"), "--url", url,
                             "--n", "4", "--max-tokens", "32", "--max-steps", "2", "--batch-size", "4",
                             "--checkpoint-every", "1", "--out", str(adapters["from_prompts"]))
        assert made.returncode == 0, made.stderr[-3000:]
        scores = served_scores(url)
    made = whetstone_cli("sharpen-sft", "--traces", str(work / "traces"), "--max-steps", "1",
                         "--batch-size", "4", "--rank", "16", "--out", str(adapters["from_traces"]))
    assert made.returncode == 0, made.stderr[-3000:]
    return {"adapters": adapters, "scores": scores}


@pytest.fixture(scope="module")
def rl_adapter(work: Path, trained: dict[str, Any]) -> dict[str, Any]:
    """sharpen-rl on the traced prompts, killed after its first checkpoint, then run again to the end."""
    out = work / "rl"
    command = [sys.executable, "-m", "training.cli", "sharpen-rl", "--traces", str(work / "traces"),
               "--out", str(out), *RL_FLAGS]
    with (work / "rl-first.log").open("w") as log:
        first = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        deadline = time.monotonic() + 600
        while not (out / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file():
            running = first.poll() is None and time.monotonic() < deadline
            assert running, (work / "rl-first.log").read_text()[-3000:]
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not (out / "adapter_config.json").exists()
    started = time.monotonic()
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    return {"out": out, "resumed_log": again.stderr, "seconds": time.monotonic() - started}


def test_traces_hold_every_sharpened_request(work: Path, trained: dict[str, Any]) -> None:
    records = [r for r in read_traces(work / "traces")
               if isinstance(r["prompt"], list) and r["prompt"][0]["content"].startswith("What is")]
    assert len(records) == PROMPTS  # served_scores' requests are traced too, with other prompts
    from_prompts = trained["adapters"]["from_prompts"]
    sft_rows = [json.loads(line) for line in (from_prompts / "sft.jsonl").read_text().splitlines()]
    by_text = {tuple(r["selected"]["token_ids"]): r for r in records}
    for row in sft_rows:
        if not row.get("dropped"):  # the SFT set holds exactly the answers the server chose and traced
            traced = by_text[tuple(row["completion_token_ids"])]
            assert traced["selected"]["logprob_sum"] == pytest.approx(row["logprob_sum"])
    assert records[0]["strategy"] == "best_of_n"
    assert records[0]["prompt_token_ids"] and records[0]["selected"]["token_ids"]


def test_sharpen_sft_writes_a_servable_adapter_with_a_card(trained: dict[str, Any], model_dir: Path) -> None:
    out = trained["adapters"]["from_prompts"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["bias"], config["peft_type"]) == (8, "none", "LORA")
    assert (out / "adapter_model.safetensors").stat().st_size > 100_000
    card = json.loads((out / "card.json").read_text())
    assert card["base_model_sha256"] == model_fingerprint(model_dir)
    assert card["n"] == 4 and card["steps"] == 2 and len(card["losses"]) == 2
    assert card["examples"] + card["dropped_unfinished"] == PROMPTS
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "checkpoints" / "checkpoint-1" / "adapter_model.safetensors").is_file()
    from_traces = json.loads((trained["adapters"]["from_traces"] / "card.json").read_text())
    assert from_traces["hyperparameters"]["rank"] == 16 and from_traces["n"] == [4]


def test_rl_reward_is_the_servers_selected_score(trained: dict[str, Any], model_dir: Path) -> None:
    from training.reward import BaseLikelihood

    for asked in trained["scores"]:
        reward = BaseLikelihood(model_dir, asked["length_penalty"])
        got = reward(prompts=[asked["prompt"]], completions=[""], completion_ids=[asked["token_ids"]])[0]
        assert got == pytest.approx(asked["selected_score"], rel=2e-3, abs=2e-3), asked


def test_sharpen_rl_resumes_after_a_kill_and_writes_its_card(rl_adapter: dict[str, Any]) -> None:
    out = rl_adapter["out"]
    assert "resuming from" in rl_adapter["resumed_log"] and "checkpoint-1" in rl_adapter["resumed_log"]
    card = json.loads((out / "card.json").read_text())
    assert (card["kind"], card["alpha"], card["beta"], card["steps"]) == ("rl", 4.0, pytest.approx(1 / 3), 3)
    assert all(len(card["metrics"][k]) == 3 for k in ("reward", "kl", "loss"))
    assert all(r < 0 for r in card["metrics"]["reward"])
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "merged" / "model.safetensors").is_file()


def greedy_latency(url: str, model: str, headers: dict[str, str] | None = None) -> float:
    """Median seconds of greedy chat answers (strategy none, 48 tokens) to a few prompts."""
    client = httpx.Client(base_url=url, timeout=300, headers=headers or {})
    seconds = []
    for prompt in GREEDY_PROMPTS:
        started = time.perf_counter()
        reply = client.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 48,
            "temperature": 0, "sharpening": {"strategy": "none"}})
        assert reply.status_code == 200, reply.text
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def test_adapters_answer_and_load_and_unload_while_serving(
    trained: dict[str, Any], rl_adapter: dict[str, Any], work: Path
) -> None:
    adapters = trained["adapters"]
    flags = [f"--lora=sharp={adapters['from_prompts']}", f"--lora=sharp16={adapters['from_traces']}",
             "--adapter-slots", "1", "--api-key", KEY]
    with whetstone(flags, work / "lora-server.log") as url:
        check_adapters(url, rl_adapter["out"], work)


def check_adapters(adapter_url: str, rl_out: Path, work: Path) -> None:
    """Adapters given at start answer; the RL adapter loads, answers (timed) and unloads while serving."""
    client = OpenAI(base_url=f"{adapter_url}/v1", api_key=KEY)
    models = {m.id: m for m in client.models.list()}
    assert {"sharp", "sharp16"} <= set(models)
    messages = [{"role": "user", "content": "What is 5 + 7?"}]
    for strategy in ("best_of_n", "none"):
        reply = client.chat.completions.create(
            model="sharp", messages=messages, max_tokens=24,  # type: ignore[arg-type]
            extra_body={"sharpening": {"strategy": strategy, "n": 4, "return_candidates": True}},
        )
        assert reply.model == "sharp" and reply.choices[0].message.content
        assert all(c["logprob_sum"] < 0 for c in reply.model_extra["sharpening"]["candidates"])

    headers = {"Authorization": f"Bearer {KEY}"}
    http = httpx.Client(base_url=adapter_url, timeout=300, headers=headers)
    body = {"lora_name": "rl", "lora_path": str(rl_out)}
    refused = http.post("/v1/load_lora_adapter", json=body, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    loaded = http.post("/v1/load_lora_adapter", json=body)
    assert loaded.status_code == 200, loaded.text
    assert "rl" in {m.id for m in client.models.list()}
    latency = greedy_latency(adapter_url, "rl", headers)
    (work / "latency-lora.json").write_text(json.dumps({"lora_served_greedy_median_s": latency}))
    assert http.post("/v1/unload_lora_adapter", json={"lora_name": "rl"}).status_code == 200
    gone = http.post("/v1/chat/completions", json={"model": "rl", "messages": messages, "max_tokens": 4})
    assert gone.status_code == 404


def test_the_merged_model_is_served_as_a_model(work: Path, rl_adapter: dict[str, Any]) -> None:
    merged = rl_adapter["out"] / "merged"
    with whetstone(["--model", str(merged)], work / "merged-server.log") as url:
        assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["merged"]
        latency = greedy_latency(url, "merged")
    lora = json.loads((work / "latency-lora.json").read_text())["lora_served_greedy_median_s"]
    print(f"greedy median latency: merged {latency:.3f} s, LoRA-served {lora:.3f} s "
          f"(RL run after resume {rl_adapter['seconds']:.0f} s)")
