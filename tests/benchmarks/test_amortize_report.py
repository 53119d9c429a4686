"""The amortization report's statistics and files, on hand-made rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.amortize.report import method_stats, paired_difference, write_report
from benchmarks.amortize.run import methods, on_server, split


def rows(method: str, correct: list[bool], loglik: float = -3.0) -> list[dict[str, object]]:
    return [{"method": method, "item": f"i{k}", "correct": ok, "base_logprob_sum": loglik + k % 2,
             "generated_tokens": 10, "latency": 0.5} for k, ok in enumerate(correct)]


def test_method_stats_accuracy_interval_and_cost() -> None:
    stats = method_stats("base greedy", rows("base greedy", [True, False, True, True]))
    assert (stats.correct, stats.items, stats.accuracy) == (3, 4, 0.75)
    assert 0.2 < stats.interval[0] < 0.75 < stats.interval[1] <= 1.0
    assert stats.loglik == pytest.approx(-2.5)
    assert (stats.generated_tokens, stats.latency) == (10, 0.5)


def test_paired_difference_uses_shared_items() -> None:
    data = rows("a", [True, True, False, True]) + rows("b", [False, True, False, False])
    diff = paired_difference(data, "a", "b")
    assert diff is not None
    assert diff[0] == pytest.approx(50.0)
    assert diff[1] < 50.0 < diff[2]
    assert paired_difference(data, "a", "missing") is None


def test_split_keeps_training_questions_out_of_the_evaluation() -> None:
    evaluation, train = split("arithmetic", 20, 30)
    assert len(evaluation) == 20 and len(train) == 30
    assert not {i.messages[-1]["content"] for i in evaluation} & {i.messages[-1]["content"] for i in train}


def test_methods_cover_base_and_adapters() -> None:
    table = methods([8, 32])
    assert list(table) == ["base greedy", "base sample", "base best-of-8", "base best-of-32",
                           "sft-8 greedy", "sft-8 sample", "sft-32 greedy", "sft-32 sample"]
    assert table["sft-8 sample"]["model"] == "sft-8"
    assert table["base best-of-32"]["sharpening"] == {"strategy": "best_of_n", "n": 32}


def test_write_report(tmp_path: Path) -> None:
    raw = tmp_path / "amortize_raw"
    raw.mkdir()
    data = rows("base greedy", [True, False]) + rows("sft-8 sample", [True, True])
    (raw / "arithmetic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    card = {"examples": 60, "dropped_unfinished": 4, "hyperparameters": {"rank": 8, "learning_rate": 3e-4,
            "batch_size": 8}, "steps": 24, "first_loss": 0.9, "final_loss": 0.3}
    meta = {"task": "arithmetic", "eval": 2, "train": 64, "n": [8], "label": "small", "seconds": 5,
            "cards": {"8": card}}
    (raw / "arithmetic.meta.json").write_text(json.dumps(meta))
    text = write_report(tmp_path).read_text()
    assert "## arithmetic (small run: 2 evaluation items, 64 training prompts)" in text
    assert "| sft-8 sample | 100.0% (2/2) |" in text
    assert "- sft-8 sample vs base greedy: +50.0 points" in text
    assert "loss 0.900 -> 0.300" in text
    assert (tmp_path / "amortize.png").read_bytes()[:4] == b"\x89PNG"


def test_rl_methods_strategies_at_the_same_alpha_and_where_each_is_answered() -> None:
    table = methods([8], [4.0, 2.0])
    assert table["base power a4"]["sharpening"] == {"strategy": "power", "n": 8, "alpha": 4.0}
    assert table["base smc a2"]["sharpening"] == {"strategy": "smc", "n": 8, "alpha": 2.0}
    assert table["base smc a2"]["temperature"] is None  # smc refuses one: it draws at 1/alpha
    assert table["base power a2"]["temperature"] == 1.0
    assert table["rl-a4 sample"]["model"] == "rl-a4" and table["rl-a2 greedy"]["temperature"] == 0.0
    assert list(on_server(table, "merged")) == ["rl-a4 merged sample"]
    assert "rl-a2 sample" in on_server(table, "lora") and "sft-8 sample" in on_server(table, "lora")
    assert "base smc a4" in on_server(table, "base") and "rl-a4 sample" not in on_server(table, "base")


def test_report_compares_the_rl_adapter_with_its_target_strategies(tmp_path: Path) -> None:
    raw = tmp_path / "amortize_raw"
    raw.mkdir()
    data = rows("base power a4", [True, False, False]) + rows("rl-a4 sample", [True, True, False], -1.0)
    (raw / "arithmetic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    rl_card = {"beta": 1 / 3, "prompts": 64, "num_generations": 4, "steps": 64,
               "hyperparameters": {"rank": 8, "learning_rate": 3e-4}}
    meta = {"task": "arithmetic", "eval": 3, "train": 64, "n": [8], "alphas": [4.0], "label": "",
            "seconds": 5, "cards": {}, "rl_cards": {"4": rl_card}}
    (raw / "arithmetic.meta.json").write_text(json.dumps(meta))
    text = write_report(tmp_path).read_text()
    assert "- rl-a4 sample vs base power a4: +33.3 points" in text
    assert "| rl-a4 sample | 66.7% (2/3) |" in text and "| -1.00 | 10.0 |" in text  # the median
    assert "- rl-a4: beta 0.333, 64 prompts x 4 samples, rank 8" in text
