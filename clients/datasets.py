"""Built-in tiny data sets with reference answers, generated deterministically in code."""

from __future__ import annotations

import random
from collections.abc import Callable

from clients.items import InputError, Item

INSTRUCTION = "Answer with just the number."


def arithmetic(count: int = 30, seed: int = 0) -> list[Item]:
    """`count` small +, - and x questions with integer answers, the same for every run."""
    rng = random.Random(seed)
    operations: list[tuple[str, Callable[[int, int], int]]] = [
        ("+", lambda a, b: a + b),
        ("-", lambda a, b: a - b),
        ("*", lambda a, b: a * b),
    ]
    items = []
    for i in range(count):
        symbol, apply = operations[i % len(operations)]
        a = rng.randint(2, 12 if symbol == "*" else 60)
        b = rng.randint(2, 12 if symbol == "*" else 40)
        question = f"What is {a} {symbol} {b}? {INSTRUCTION}"
        items.append(Item(messages=({"role": "user", "content": question},),
                          answer=str(apply(a, b))))
    return items


DATASETS: dict[str, Callable[[], list[Item]]] = {"arithmetic": arithmetic}


def builtin_dataset(name: str) -> list[Item]:
    """A built-in data set by name."""
    try:
        return DATASETS[name]()
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; built in: {', '.join(DATASETS)}") from None
