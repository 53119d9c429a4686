"""Both training commands end to end on a tiny random Llama (no server): card, plot, merged model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main


def whetstone(*argv: str) -> None:
    """Run a whetstone subcommand in-process; it must exit 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 0


def assert_merged_equals_adapter(base: Path, out: Path) -> None:
    """OUT/merged answers like the base model with OUT's adapter, and unlike the bare base model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[3, 12, 4, 13]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(out / "merged")(ids).logits
        bare = AutoModelForCausalLM.from_pretrained(base)
        plain = bare(ids).logits
        adapted = PeftModel.from_pretrained(bare, out).eval()(ids).logits
    assert torch.allclose(merged, adapted, atol=1e-5)
    assert not torch.allclose(merged, plain, atol=1e-4)


def test_sharpen_rl_writes_adapter_card_and_merged_model(tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{i} + {i}"}]}) + "\n"
                               for i in range(4)))
    out = tmp_path / "rl"
    flags = ["sharpen-rl", "--prompts", str(prompts), "--model", str(tiny_model), "--out", str(out),
             "--max-steps", "2", "--batch-size", "4", "--num-generations", "2", "--max-tokens", "4",
             "--lr", "0.05", "--checkpoint-every", "1", "--alpha", "3", "--merge"]
    whetstone(*flags)
    card = json.loads((out / "card.json").read_text())
    assert (card["kind"], card["alpha"], card["beta"], card["steps"]) == ("rl", 3.0, 0.5, 2)
    assert [len(card["metrics"][k]) for k in ("reward", "kl", "loss")] == [2, 2, 2]
    assert card["hyperparameters"]["precision"] == "auto" and card["merged"] == str(out / "merged")
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert_merged_equals_adapter(tiny_model, out)
    code = None
    try:
        main(flags)
    except SystemExit as exc:
        code = exc.code
    assert isinstance(code, str) and "already holds a trained adapter" in code


def test_sharpen_sft_from_traces_writes_adapter_card_and_merged_model(
    tiny_model: Path, tmp_path: Path
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    record = {"strategy": "best_of_n", "prompt": "1 + 1", "prompt_token_ids": [3, 12, 3, 13],
              "selected": {"token_ids": [4, 1], "status": "finished", "text": "2", "logprob_sum": -1.0},
              "settings": {"sharpening": {"n": 4}}}
    (traces / "traces-a-0000.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    out = tmp_path / "sft"
    whetstone("sharpen-sft", "--traces", str(traces), "--model", str(tiny_model), "--out", str(out),
              "--max-steps", "3", "--batch-size", "1", "--grad-accum", "2", "--lr", "0.05", "--merge")
    card = json.loads((out / "card.json").read_text())
    assert (card["kind"], card["n"], card["examples"], card["steps"]) == ("sft", [4], 2, 3)
    assert card["hyperparameters"]["grad_accum"] == 2
    assert card["final_loss"] < card["first_loss"]
    assert_merged_equals_adapter(tiny_model, out)


def test_a_collected_sft_set_is_reused_without_a_server(tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "1 + 1"}\n{"prompt": "2 + 2"}\n')
    out = tmp_path / "sft"
    out.mkdir()
    rows = [{"index": i, "prompt": f"{i + 1} + {i + 1}", "completion_token_ids": [4 + 2 * i, 1],
             "completion_text": "x", "logprob_sum": -1.0, "n": 8, "prompt_token_ids": None} for i in range(2)]
    (out / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = ["sharpen-sft", "--prompts", str(prompts), "--model", str(tiny_model), "--out", str(out),
             "--url", "http://127.0.0.1:9", "--max-steps", "1", "--batch-size", "2"]  # nobody listens there
    whetstone(*flags, "--collect-only")
    assert not (out / "adapter_config.json").exists()
    whetstone(*flags)
    assert json.loads((out / "card.json").read_text())["examples"] == 2
