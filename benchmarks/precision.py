"""bfloat16 against float32 on this host: decoding speed, and how far a score moves with the batch.

For each dtype one eager server is started. Speed: greedy, the default (8 candidates, greedy
first) and best-of-8 at temperature 1 on the load generator's chat prompts, one request at a
time, generated tokens (all candidates) per second of wall time. Drift: best-of-8
candidates (scored inside their batch of 8) are re-scored through echo alone and again while
other 8-candidate requests run beside them; the float32 run also re-scores the bfloat16 run's
tokens, which gives the gap between the precisions. Writes benchmarks/results/precision.json
and .md, with the machine line.

    python -m benchmarks.precision                      # both dtypes, about 5 minutes
    python -m benchmarks.precision --dtypes float32 --prompts 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common.environment import log_progress, machine
from benchmarks.common.servers import whetstone_server
from clients.prompts import LOAD_PROMPTS

log = logging.getLogger("benchmarks.precision")
RESULTS = Path("benchmarks/results")
SPEED_WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "default_8": {},  # the server's default: best_of_n, 8 candidates, greedy first
    "best_of_8_t1": {"temperature": 1.0, "seed": 0, "sharpening": {"n": 8}},
}
LOAD_REQUESTS = 3  # 8-candidate requests running beside each re-scoring in the "loaded" case


async def speed(client: httpx.AsyncClient, prompts: list[str], max_tokens: int) -> dict[str, float]:
    """Generated tokens per second of each way, summed over the prompts (one request at a time)."""
    rates = {}
    for way, fields in SPEED_WAYS.items():
        tokens, seconds = 0, 0.0
        for prompt in prompts:
            started = time.perf_counter()
            body = await post(client, "/v1/chat/completions", {"messages": chat(prompt),
                                                               "max_tokens": max_tokens, **fields})
            seconds += time.perf_counter() - started
            tokens += body["usage"]["completion_tokens"]
        rates[way] = round(tokens / seconds, 1)
        log.info("%s: %.1f tokens/s", way, rates[way])
    return rates


def chat(prompt: str) -> list[dict[str, str]]:
    """A one-message conversation."""
    return [{"role": "user", "content": prompt}]


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One POST; its JSON body."""
    response = await client.post(path, json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def echo_score(client: httpx.AsyncClient, prompt_ids: list[int], token_ids: list[int]) -> float:
    """The log-likelihood of `token_ids` after `prompt_ids`, scored as an echoed prompt."""
    body = await post(client, "/v1/completions",
                      {"prompt": prompt_ids + token_ids, "max_tokens": 0, "echo": True, "logprobs": 0})
    return float(sum(body["choices"][0]["logprobs"]["token_logprobs"][-len(token_ids):]))


async def under_load(client: httpx.AsyncClient, prompt: str, work: Any) -> Any:
    """Run `work` while LOAD_REQUESTS sampled 8-candidate requests keep the engine's batch full."""
    load = [
        asyncio.create_task(post(client, "/v1/chat/completions", {
            "messages": chat(prompt), "max_tokens": 64, "temperature": 1.0, "seed": 100 + i,
            "sharpening": {"n": 8, "prune": False},
        }))
        for i in range(LOAD_REQUESTS)
    ]
    await asyncio.sleep(0.5)  # let them start decoding
    result = await work
    await asyncio.gather(*load)
    return result


async def drift(
    client: httpx.AsyncClient, prompts: list[str], max_tokens: int, foreign: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each candidate's score in its batch of 8, alone, and beside other requests (plus `foreign` ones)."""
    rows = []
    for i, prompt in enumerate(prompts):
        ids = (await client.post("/tokenize", json={"messages": chat(prompt)})).json()["tokens"]
        body = await post(client, "/v1/completions", {
            "prompt": ids, "max_tokens": max_tokens, "temperature": 1.0, "seed": i,
            "sharpening": {"n": 8, "prune": False, "return_candidates": True},
        })
        for cand in body["sharpening"]["candidates"]:
            alone = await echo_score(client, ids, cand["token_ids"])
            loaded = await under_load(client, prompt, echo_score(client, ids, cand["token_ids"]))
            rows.append({"prompt_ids": ids, "token_ids": cand["token_ids"],
                         "in_batch_of_8": cand["logprob_sum"], "alone": alone, "among_others": loaded})
    for row in foreign:
        row["alone_here"] = await echo_score(client, row["prompt_ids"], row["token_ids"])
    return rows


def gaps(rows: list[dict[str, Any]], key: str, reference: str = "alone") -> dict[str, float]:
    """Largest and median absolute gap between two scores of the same tokens, total and per token."""
    totals = [abs(r[key] - r[reference]) for r in rows]
    per_token = [t / len(r["token_ids"]) for t, r in zip(totals, rows, strict=True)]
    return {"max": round(max(totals), 4), "median": round(statistics.median(totals), 4),
            "max_per_token": round(max(per_token), 5)}


async def measure(dtype: str, prompts: list[str], max_tokens: int, foreign: list[dict[str, Any]] | None,
                  log_path: Path) -> dict[str, Any]:
    """Speed and drift (unless `foreign` is None) of one dtype on its own eager server."""
    with whetstone_server(["--dtype", dtype, "--kv-cache-gib", "1"], True, log_path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            health = (await client.get("/health")).json()
            rates = await speed(client, prompts, max_tokens)
            if foreign is None:
                return {"dtype": dtype, "health": health, "tokens_per_s": rates}
            rows = await drift(client, prompts[:3], 32, foreign)
    result = {"dtype": dtype, "health": health, "tokens_per_s": rates, "candidates": len(rows),
              "batch_of_8_vs_alone": gaps(rows, "in_batch_of_8"),
              "among_others_vs_alone": gaps(rows, "among_others"), "rows": rows}
    if foreign:
        result["other_dtype_vs_this"] = gaps(foreign, "alone", "alone_here")
    return result


def report(results: list[dict[str, Any]], host: str) -> str:
    """The markdown summary."""
    lines = ["# bfloat16 against float32 (benchmarks/precision.py)", "", f"Machine: {host}", "",
             "| dtype | greedy tokens/s | default (8 candidates) tokens/s | best-of-8 at T=1 tokens/s | "
             "batch of 8 vs alone, max (median) | among others vs alone, max (median) | max per token |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rate = r["tokens_per_s"]
        row = f"| {r['dtype']} | {rate['greedy']} | {rate['default_8']} | {rate['best_of_8_t1']} | "
        if "candidates" not in r:
            lines.append(row + "- | - | - |")
            continue
        b, o = r["batch_of_8_vs_alone"], r["among_others_vs_alone"]
        lines.append(row + f"{b['max']} ({b['median']}) | {o['max']} ({o['median']}) | "
                     f"{max(b['max_per_token'], o['max_per_token'])} |")
    for r in results:
        if "other_dtype_vs_this" in r:
            g = r["other_dtype_vs_this"]
            lines += ["", f"The same tokens scored alone in bfloat16 and in {r['dtype']}: largest gap "
                      f"{g['max']} nats, median {g['median']} ({g['max_per_token']} per token)."]
    if "candidates" in results[0]:
        lines += ["", f"Scores are sums of raw log-probabilities in nats over {results[0]['candidates']} "
                  "candidates of up to 32 tokens; raw rows in the JSON beside this file."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure each dtype, write the JSON and the markdown summary."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--prompts", type=int, default=4, help="prompts for the speed run (drift uses 3)")
    parser.add_argument("--max-tokens", type=int, default=96, help="token limit of the speed run")
    parser.add_argument("--speed-only", action="store_true", help="measure decoding speed only")
    parser.add_argument("--out", type=Path, default=RESULTS / "precision",
                        help="where to write OUT.json and OUT.md")
    args = parser.parse_args()
    log_progress()
    prompts = list(LOAD_PROMPTS[: args.prompts])
    results: list[dict[str, Any]] = []
    for dtype in args.dtypes:
        foreign = None if args.speed_only else [dict(row) for row in results[0]["rows"]] if results else []
        results.append(asyncio.run(measure(dtype, prompts, args.max_tokens, foreign,
                                           args.out.with_name(f"precision_{dtype}_server.log"))))
    host = machine(" and ".join(args.dtypes))
    args.out.with_suffix(".json").write_text(json.dumps({"machine": host, "results": results}, indent=1))
    args.out.with_suffix(".md").write_text(report(results, host))
    print(report(results, host))


if __name__ == "__main__":
    main()
