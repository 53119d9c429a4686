"""The SFT set: each prompt's best-of-N answer under the base model's own log-likelihood.

Examples come from a whetstone server (best_of_n with return_candidates, through
`clients.WhetstoneClient`) or from the server's traces. Only finished answers are kept: an
answer cut off by max_tokens would teach the adapter not to stop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clients import Completion, WhetstoneClient
from training.errors import SftDataError

logger = logging.getLogger(__name__)

Prompt = str | list[dict[str, Any]]  # plain text (a completion prompt) or chat messages


@dataclass(frozen=True)
class SftExample:
    """One training pair: a prompt and the answer best-of-N chose for it."""

    index: int
    prompt: Prompt
    completion_token_ids: list[int]
    completion_text: str
    logprob_sum: float
    n: int
    prompt_token_ids: list[int] | None = None  # known for traced requests; else tokenized at training


def read_prompts(path: Path) -> list[Prompt]:
    """Prompts of a JSONL file, one `{"prompt": str}` or `{"messages": [...]}` object a line."""
    if not path.is_file():
        raise SftDataError(f"--prompts {path}: no such file")
    prompts: list[Prompt] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SftDataError(f"{path}:{number} is not JSON: {exc}") from exc
        prompts.append(prompt_of(row, f"{path}:{number}"))
    if not prompts:
        raise SftDataError(f"{path} holds no prompts; write one JSON object a line")
    return prompts


def prompt_of(row: Any, where: str) -> Prompt:
    """The prompt of one input line, or SftDataError naming the line."""
    if isinstance(row, dict) and isinstance(row.get("prompt"), str) and row["prompt"]:
        return str(row["prompt"])
    messages = row.get("messages") if isinstance(row, dict) else None
    if (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages)
    ):
        return messages
    raise SftDataError(
        f'{where}: expected {{"prompt": "..."}} or {{"messages": [{{"role": ..., "content": ...}}]}}'
    )


def examples_from_traces(records: Iterable[dict[str, Any]], model: str | None = None) -> list[SftExample]:
    """SFT examples from trace records: sharpened (not `none`), finished, of `model` when given."""
    examples: list[SftExample] = []
    for record in records:
        selected = record.get("selected") or {}
        if record.get("strategy") == "none" or selected.get("status") != "finished":
            continue
        if model is not None and record.get("model") != model:
            continue
        if not record.get("prompt_token_ids") or not selected.get("token_ids"):
            continue
        examples.append(SftExample(
            index=len(examples),
            prompt=record.get("prompt") or "",
            completion_token_ids=[int(t) for t in selected["token_ids"]],
            completion_text=str(selected.get("text", "")),
            logprob_sum=float(selected.get("logprob_sum", 0.0)),
            n=int(((record.get("settings") or {}).get("sharpening") or {}).get("n", 1)),
            prompt_token_ids=[int(t) for t in record["prompt_token_ids"]],
        ))
    return examples


def best_of_n(client: WhetstoneClient, prompt: Prompt, n: int, max_tokens: int, seed: int) -> Completion:
    """The server's best-of-N answer (raw log-likelihood, temperature 1) with every candidate returned."""
    sharpening = {"strategy": "best_of_n", "n": n, "length_penalty": 0.0, "return_candidates": True,
                  "seed": seed}
    if isinstance(prompt, str):
        return client.complete(prompt, max_tokens=max_tokens, temperature=1.0, sharpening=sharpening)
    return client.chat(prompt, max_tokens=max_tokens, temperature=1.0, sharpening=sharpening)


def example_from(index: int, prompt: Prompt, completion: Completion, n: int) -> SftExample | None:
    """The SFT example of one best-of-N answer, or None when the chosen answer did not finish."""
    sharpening = completion.sharpening
    selected = sharpening.selected if sharpening else None
    if selected is None or selected.status != "finished" or not selected.token_ids:
        return None
    return SftExample(index, prompt, list(selected.token_ids), selected.text, selected.logprob_sum, n)


Sampler = Callable[[Prompt, int], Completion]  # (prompt, its index) -> best-of-N completion


def build_sft_set(
    prompts: list[Prompt], sample: Sampler, n: int, out_path: Path, concurrency: int = 4,
    on_done: Callable[[], None] | None = None,
) -> tuple[list[SftExample], int]:
    """Collect (or resume collecting) the SFT set into `out_path`; return the examples and the dropped count.

    Each prompt's outcome is one JSON line (an example, or `{"index": i, "dropped": true}`), so an
    interrupted build resumes with the prompts not yet answered.
    """
    done = {int(row["index"]): row for row in read_rows(out_path)}
    for row in done.values():
        if not row.get("dropped") and int(row["n"]) != n:
            raise SftDataError(f"{out_path} was collected with N={row['n']}, not {n}; use another --out")
    todo = [i for i in range(len(prompts)) if i not in done]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as out, ThreadPoolExecutor(max(1, concurrency)) as pool:
        for index, completion in zip(todo, pool.map(lambda i: sample(prompts[i], i), todo), strict=True):
            example = example_from(index, prompts[index], completion, n)
            row = asdict(example) if example else {"index": index, "dropped": True}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            done[index] = row
            if on_done is not None:
                on_done()
    examples = [example_of_row(row) for _, row in sorted(done.items()) if not row.get("dropped")]
    dropped = sum(1 for row in done.values() if row.get("dropped"))
    return examples, dropped


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """JSON rows of an SFT set file (none when it does not exist yet)."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def example_of_row(row: dict[str, Any]) -> SftExample:
    """An SftExample from its JSON row."""
    return SftExample(**row)


def write_examples(examples: list[SftExample], path: Path) -> None:
    """Write examples as JSON lines (the SFT set of a trace directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in examples]
    path.write_text("".join(lines), encoding="utf-8")
