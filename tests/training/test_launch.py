"""Both training commands as one data-parallel run of two CPU processes under `accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from clients.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def launch(*argv: str) -> None:
    """`accelerate launch` (torchrun underneath) of two processes running a whetstone subcommand."""
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "training.cli", *argv]
    done = subprocess.run(command, cwd=ROOT, env=os.environ | {"HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]


def test_two_processes_train_one_adapter_each_command(tiny_model: Path, tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    records = [{"strategy": "best_of_n", "prompt": f"{i} + {i}", "prompt_token_ids": [2 + i, 12, 2 + i, 13],
                "selected": {"token_ids": [4 + i, 1], "status": "finished", "text": "x", "logprob_sum": -1.0},
                "settings": {"sharpening": {"n": 4}}} for i in range(4)]
    (traces / "traces-a-0000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    common = ["--traces", str(traces), "--model", str(tiny_model), "--max-steps", "2"]

    launch("sharpen-sft", *common, "--out", str(tmp_path / "sft"), "--batch-size", "1")
    sft = json.loads((tmp_path / "sft" / "card.json").read_text())
    assert (sft["processes"], sft["steps"], sft["examples"], sft["precision_used"]) == (2, 2, 4, "fp32")

    launch("sharpen-rl", *common, "--out", str(tmp_path / "rl"), "--batch-size", "2",
           "--num-generations", "2", "--max-tokens", "4")
    rl = json.loads((tmp_path / "rl" / "card.json").read_text())
    assert (rl["processes"], rl["steps"], rl["prompts"], rl["precision_used"]) == (2, 2, 4, "fp32")
    assert len(rl["metrics"]["reward"]) == 2
