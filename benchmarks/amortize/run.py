"""Amortization: is one sample of a sharpened adapter as good as the base model's best-of-N?

The paper's measurement (Huang et al. 2024, section 5 / appendix A.3) on whetstone's own stack:
1. a base server (eager) answers the evaluation items: greedy, one temperature-1 sample and
   best-of-N for every N; `whetstone sharpen-sft --url` distils each N's best-of-N answers on
   the TRAIN prompts (disjoint from the evaluation items) into a LoRA adapter; the same server
   answers with `power` and `smc` at every alpha (they sample pi^alpha, as RL-sharpening targets);
2. `whetstone sharpen-rl --alpha A --merge` trains an RLHF-sharpened adapter per alpha on the
   same TRAIN prompts (no server needed);
3. a server with every adapter (`--lora`) answers the evaluation items: greedy and one sample;
   a server of the first alpha's merged model answers one sample, for merged-vs-LoRA latency;
4. every answer is re-scored by the base model (transformers, float32) so both sides' base
   log-likelihood is measured the same way; accuracy with 95 % Wilson intervals, paired
   differences, serving cost per answer (generated tokens, latency), plots: OUT/amortize.md.

Raw answers are cached in OUT/amortize_raw/TASK.jsonl; adapters live in --work (not committed).

  python -m benchmarks.amortize                  # the committed run: about 1.5 hours on 2 cores
  python -m benchmarks.amortize --tasks arithmetic --n 8 --train 64 --eval 50 --label small
  python -m benchmarks.amortize --report-only
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.amortize.report import write_report
from benchmarks.common.datasets import TASKS, Item, load_task
from benchmarks.common.environment import log_progress
from benchmarks.common.servers import prepared_model_dir, whetstone_executable, whetstone_server
from clients import Completion, WhetstoneClient

log = logging.getLogger("benchmarks.amortize")
RESULTS = Path(__file__).resolve().parent.parent / "results"
SAMPLE_SEED = 1000  # item i's temperature-1 sample uses seed SAMPLE_SEED + i on both sides
BON_SEED = 5000
EAGER = True  # LoRA turns torch.compile off on CPU anyway; both servers run alike
MERGED = "merged"  # the served name of a merged model directory (OUT/merged)


def split(task: str, eval_count: int, train_count: int) -> tuple[list[Item], list[Item]]:
    """Evaluation items and training items whose question no evaluation item asks (one list, two slices)."""
    items = load_task(task, eval_count + train_count)
    if len(items) < eval_count + train_count:
        raise SystemExit(f"{task} has only {len(items)} items; ask for fewer")
    evaluation = items[:eval_count]
    asked = {item.messages[-1]["content"] for item in evaluation}
    train = [item for item in items[eval_count:] if item.messages[-1]["content"] not in asked]
    return evaluation, train


def methods(ns: list[int], alphas: Sequence[float] = ()) -> dict[str, dict[str, Any]]:
    """Every (side, decoding) measured: request fields per method name."""
    greedy = {"temperature": 0.0, "sharpening": {"strategy": "none"}}
    sample = {"temperature": 1.0, "sharpening": {"strategy": "none"}, "seed_base": SAMPLE_SEED}
    table: dict[str, dict[str, Any]] = {"base greedy": greedy, "base sample": sample}
    for n in ns:
        table[f"base best-of-{n}"] = {"temperature": 1.0, "seed_base": BON_SEED,
                                      "sharpening": {"strategy": "best_of_n", "n": n}}
    for alpha in alphas:
        for strategy, temperature in (("power", 1.0), ("smc", None)):  # smc draws at 1/alpha itself
            table[f"base {strategy} a{alpha:g}"] = {
                "temperature": temperature, "seed_base": BON_SEED,
                "sharpening": {"strategy": strategy, "n": min(ns), "alpha": alpha}}
    for n in ns:
        table[f"sft-{n} greedy"] = greedy | {"model": f"sft-{n}"}
        table[f"sft-{n} sample"] = sample | {"model": f"sft-{n}"}
    for alpha in alphas:
        table[f"{rl_name(alpha)} greedy"] = greedy | {"model": rl_name(alpha)}
        table[f"{rl_name(alpha)} sample"] = sample | {"model": rl_name(alpha)}
    if alphas:
        table[f"{rl_name(alphas[0])} merged sample"] = sample | {"model": MERGED}
    return table


def rl_name(alpha: float) -> str:
    """The served name of the RL adapter trained at `alpha`."""
    return f"rl-a{alpha:g}"


def on_server(table: dict[str, dict[str, Any]], server: str) -> dict[str, dict[str, Any]]:
    """The methods one server answers: `base` (no model), `lora` (an adapter) or `merged`."""
    def where(spec: dict[str, Any]) -> str:
        return "base" if "model" not in spec else "merged" if spec["model"] == MERGED else "lora"
    return {name: spec for name, spec in table.items() if where(spec) == server}


def ask(client: WhetstoneClient, item: Item, index: int, spec: dict[str, Any], max_tokens: int) -> Completion:
    """One answer to one item as `spec` describes, with the chosen candidate's token ids."""
    sharpening = dict(spec["sharpening"]) | {"return_candidates": True}
    if "seed_base" in spec:
        sharpening["seed"] = spec["seed_base"] + index
    extra = {"model": spec["model"]} if "model" in spec else {}
    return client.chat(item.messages, max_tokens=max_tokens, temperature=spec["temperature"],
                       sharpening=sharpening, **extra)


def answer_all(
    url: str, task: str, items: list[Item], wanted: dict[str, dict[str, Any]], cache: Path, concurrency: int
) -> None:
    """Ask every (method, item) not in the cache yet; append each answer as one JSON line."""
    done = {(r["method"], r["item"]) for r in read_rows(cache)}
    jobs = [(m, i) for m in wanted for i in range(len(items)) if (m, items[i].id) not in done]
    check = TASKS[task].check
    max_tokens = TASKS[task].max_tokens
    log.info("%s: %d answers to collect from %s", task, len(jobs), url)
    with WhetstoneClient(url, timeout=900) as client, ThreadPoolExecutor(concurrency) as pool, \
            cache.open("a", encoding="utf-8") as out:
        def one(job: tuple[str, int]) -> dict[str, Any]:
            method, index = job
            reply = ask(client, items[index], index, wanted[method], max_tokens)
            chosen = reply.sharpening.selected if reply.sharpening else None
            return {"method": method, "item": items[index].id, "text": reply.text,
                    "correct": check(reply.text, items[index].answer),
                    "token_ids": list(chosen.token_ids) if chosen else [],
                    "server_logprob_sum": chosen.logprob_sum if chosen else None,
                    "generated_tokens": reply.usage.completion_tokens if reply.usage else None,
                    "latency": reply.latency}
        for row in tqdm(pool.map(one, jobs), total=len(jobs), desc=f"{task} answers", unit="answer"):
            out.write(json.dumps(row) + "\n")
            out.flush()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a cache file (none when absent)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_prompts(task: str, train: list[Item], folder: Path) -> Path:
    """The training items as a `--prompts` file of chat messages."""
    prompts = folder / f"{task}-train.jsonl"
    prompts.write_text("".join(json.dumps({"messages": i.messages}) + "\n" for i in train), encoding="utf-8")
    return prompts


def sharpen(url: str, task: str, train: list[Item], n: int, adapter: Path, epochs: int, batch: int) -> None:
    """Train the best-of-N adapter on the train items with `whetstone sharpen-sft` (resumes if cut off)."""
    if (adapter / "card.json").is_file():
        log.info("%s exists; reusing it", adapter)
        return
    adapter.mkdir(parents=True, exist_ok=True)
    prompts = train_prompts(task, train, adapter.parent)
    steps = max(1, epochs * math.ceil(len(train) / batch))
    command = [whetstone_executable(), "sharpen-sft", "--prompts", str(prompts), "--url", url, "--n", str(n),
               "--max-tokens", str(TASKS[task].max_tokens), "--max-steps", str(steps),
               "--batch-size", str(batch), "--out", str(adapter)]
    log.info("training %s: %s", adapter.name, " ".join(command))
    subprocess.run(command, check=True)


def sharpen_rl(task: str, train: list[Item], alpha: float, adapter: Path, args: argparse.Namespace) -> None:
    """Train the RL-sharpened adapter at `alpha` with `whetstone sharpen-rl --merge` (resumes if cut off)."""
    if (adapter / "card.json").is_file():
        log.info("%s exists; reusing it", adapter)
        return
    adapter.mkdir(parents=True, exist_ok=True)
    prompts = train_prompts(task, train, adapter.parent)
    command = [whetstone_executable(), "sharpen-rl", "--prompts", str(prompts), "--alpha", f"{alpha:g}",
               "--max-tokens", str(TASKS[task].max_tokens), "--max-steps", str(args.rl_steps),
               "--batch-size", str(args.batch_size), "--num-generations", str(args.rl_generations),
               "--merge", "--out", str(adapter)]
    log.info("training %s: %s", adapter.name, " ".join(command))
    subprocess.run(command, check=True)


def base_loglik(model_dir: str, items: dict[str, Item], rows: list[dict[str, Any]]) -> None:
    """Add `base_logprob_sum` to every row: the base model's log-likelihood of the answer's tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    todo = [row for row in rows if "base_logprob_sum" not in row and row["token_ids"]]
    for row in tqdm(todo, desc="base log-likelihood", unit="answer"):
        prompt = list(tokenizer.apply_chat_template(items[row["item"]].messages, add_generation_prompt=True,
                                                    tokenize=True, return_dict=False))
        ids = torch.tensor([prompt + row["token_ids"]])
        with torch.no_grad():  # only the positions that predict an answer token
            logprobs = torch.log_softmax(model(ids).logits[0, len(prompt) - 1:-1].float(), dim=-1)
        picked = logprobs.gather(1, ids[0, len(prompt):].unsqueeze(1))
        row["base_logprob_sum"] = float(picked.sum())


def run_task(args: argparse.Namespace, task: str, model_dir: str) -> None:
    """Collect, train, evaluate and re-score one task."""
    evaluation, train = split(task, args.eval, args.train)
    table = methods(args.n, args.alphas)
    cache = args.out / "amortize_raw" / f"{task}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    answered = {(r["method"], r["item"]) for r in read_rows(cache)}

    def needed(name: str) -> bool:  # an adapter whose answers are all cached is not trained again
        return any((m, i.id) not in answered for m, spec in table.items() if spec.get("model") == name
                   for i in evaluation)

    adapters = {n: args.work / f"{task}-sft-{n}" for n in args.n if needed(f"sft-{n}")}
    rl_adapters = {alpha: args.work / f"{task}-{rl_name(alpha)}" for alpha in args.alphas
                   if needed(rl_name(alpha)) or (needed(MERGED) and alpha == args.alphas[0])}
    started = time.monotonic()
    with whetstone_server([], EAGER, args.work / f"{task}-base.log") as url:
        answer_all(url, task, evaluation, on_server(table, "base"), cache, args.concurrency)
        for n, adapter in adapters.items():
            sharpen(url, task, train, n, adapter, args.epochs, args.batch_size)
    for alpha, adapter in rl_adapters.items():
        sharpen_rl(task, train, alpha, adapter, args)
    lora = [f"--lora=sft-{n}={path}" for n, path in adapters.items()]
    lora += [f"--lora={rl_name(alpha)}={path}" for alpha, path in rl_adapters.items()]
    loaded = {f"sft-{n}" for n in adapters} | {rl_name(alpha) for alpha in rl_adapters}
    if loaded:
        with whetstone_server(lora, EAGER, args.work / f"{task}-lora.log") as url:
            served = {m: spec for m, spec in on_server(table, "lora").items() if spec["model"] in loaded}
            answer_all(url, task, evaluation, served, cache, args.concurrency)
    if args.alphas and args.alphas[0] in rl_adapters:
        merged = rl_adapters[args.alphas[0]] / MERGED
        with whetstone_server([f"--model={merged}"], EAGER, args.work / f"{task}-merged.log") as url:
            answer_all(url, task, evaluation, on_server(table, "merged"), cache, args.concurrency)
    rows = read_rows(cache)
    base_loglik(model_dir, {i.id: i for i in evaluation}, rows)
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    meta_path = args.out / "amortize_raw" / f"{task}.meta.json"
    earlier = json.loads(meta_path.read_text()) if meta_path.is_file() else {}  # adapters not retrained
    cards = {str(n): json.loads((p / "card.json").read_text()) for n, p in adapters.items()}
    rl_cards = {f"{a:g}": json.loads((p / "card.json").read_text()) for a, p in rl_adapters.items()}
    meta = {"task": task, "eval": len(evaluation), "train": len(train), "n": args.n, "epochs": args.epochs,
            "alphas": args.alphas, "batch_size": args.batch_size, "label": args.label,
            "seconds": earlier.get("seconds", 0) + round(time.monotonic() - started),
            "cards": earlier.get("cards", {}) | cards, "rl_cards": earlier.get("rl_cards", {}) | rl_cards}
    for card in (*meta["cards"].values(), *meta["rl_cards"].values()):
        for per_step in ("losses", "metrics"):
            card.pop(per_step, None)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.amortize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["arithmetic", "arc_easy"], choices=sorted(TASKS))
    parser.add_argument("--n", nargs="+", type=int, default=[8, 32], help="best-of-N sizes (an adapter each)")
    parser.add_argument("--train", type=int, default=256, help="training prompts per task")
    parser.add_argument("--eval", type=int, default=150, help="evaluation items per task")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the SFT set")
    parser.add_argument("--alphas", nargs="*", type=float, default=[4.0, 2.0],
                        help="RL-sharpening exponents (an adapter each; power and smc at the same alpha)")
    parser.add_argument("--rl-steps", type=int, default=64, help="sharpen-rl optimizer steps per adapter")
    parser.add_argument("--rl-generations", type=int, default=4, help="sharpen-rl samples per prompt")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--label", default="", help="a name for this run in the report (e.g. small)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=None,
                        help="adapters and server logs (default: $WHETSTONE_HOME/amortize)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the cache")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    log_progress()
    args = build_parser().parse_args(argv)
    if not args.report_only:
        home = Path(os.environ.get("WHETSTONE_HOME", Path.home() / ".cache" / "whetstone"))
        args.work = args.work or home / "amortize"
        args.work.mkdir(parents=True, exist_ok=True)
        model_dir = prepared_model_dir()
        for task in args.tasks:
            run_task(args, task, model_dir)
    log.info("report: %s", write_report(args.out))
    return 0

