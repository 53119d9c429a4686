"""The prompt sets and request shapes ("ways") the frontier benchmark compares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.common.datasets import load_task
from clients.prompts import LOAD_PROMPTS

ALPHA = 4.0
Messages = list[dict[str, str]]

# Short questions written for this benchmark and used nowhere else: the default temperature was
# chosen on the `chat` set; this set checks the default on prompts it was not chosen on.
UNSEEN_PROMPTS = (
    "What is the boiling point of water at sea level?",
    "Name three primary colors.",
    "Why do cats purr?",
    "Give one tip for sleeping better.",
    "What does a compiler do?",
    "Translate 'thank you' into Spanish.",
    "How many legs does a spider have?",
    "What is the largest planet in our solar system?",
    "Suggest a name for a pet goldfish.",
    "What is 12 times 12?",
    "Describe the color blue to someone who cannot see.",
    "Who wrote Romeo and Juliet?",
    "What is a noun?",
    "Write one sentence about the ocean.",
    "Why is the sky dark at night?",
    "List two uses of a paperclip.",
)
# A second held-out set, written after the default's size (n) was chosen on `chat` and `unseen`:
# the check that choice gets on prompts no decision looked at.
FRESH_PROMPTS = (
    "What gas do plants take in from the air?",
    "Name a mammal that can fly.",
    "What is the opposite of 'ancient'?",
    "How many minutes are in two hours?",
    "Give a synonym for 'happy'.",
    "What language is spoken in Brazil?",
    "Why do leaves change colour in autumn?",
    "What is the freezing point of water in Celsius?",
    "Write a short greeting for a birthday card.",
    "What is the main ingredient of guacamole?",
    "Explain what a battery does in one sentence.",
    "Which ocean is the largest?",
    "What is 9 plus 16?",
    "Name one instrument in an orchestra's string section.",
    "What does a thermometer measure?",
    "Suggest a title for a story about a lost key.",
    "What is the chemical symbol for gold?",
    "How many sides does a hexagon have?",
    "Give one reason to drink water.",
    "Who painted the Mona Lisa?",
)
# A third held-out set, written before a sweep of the candidate temperature (greedy + 7 at 0.4 to
# 1.0 on `chat`, `unseen` and `fresh`; 0.4 was kept) and looked at by no decision since.
NOVEL_PROMPTS = (
    "What is the tallest mountain on Earth?",
    "Name a fruit that is yellow.",
    "How many hours are in a day?",
    "What do bees make?",
    "Give an antonym for 'cold'.",
    "What is the capital of Japan?",
    "Why do we need sleep?",
    "What is 7 plus 8?",
    "Write a sentence that uses the word 'river'.",
    "What is the main job of the heart?",
    "Name two vegetables that are green.",
    "What does a librarian do?",
    "How many continents are there?",
    "Suggest a name for a coffee shop.",
    "What is ice made of?",
    "Who was the first person to walk on the Moon?",
    "What is a verb?",
    "Give one way to save energy at home.",
    "What colour do you get by mixing red and white?",
    "Why do birds migrate?",
    "What is the square of 9?",
    "Name a famous bridge.",
    "What does the word 'generous' mean?",
    "Write a short motto for a school.",
)


def user(text: str) -> Messages:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


def prompt_sets(per_task: int) -> dict[str, list[Messages]]:
    """`chat` (the load generator's first 12), `unseen` (16 new ones), `fresh` (20 more), `novel` (24
    more), `tasks`."""
    tasks = [
        [dict(m) for m in item.messages]
        for name in ("arithmetic", "gsm8k", "arc_easy")
        for item in load_task(name, per_task)
    ]
    return {
        "chat": [user(p) for p in LOAD_PROMPTS[:12]],
        "unseen": [user(p) for p in UNSEEN_PROMPTS],
        "fresh": [user(p) for p in FRESH_PROMPTS],
        "novel": [user(p) for p in NOVEL_PROMPTS],
        "tasks": tasks,
    }


def greedy_plus(n: int, temperature: float, **sharpening: Any) -> dict[str, Any]:
    """best_of_n with a greedy candidate and n - 1 samples at `temperature`."""
    return {"temperature": temperature, "sharpening": {"n": n, "greedy_candidate": True, **sharpening}}


def beam(n: int, width: int, chunk: int) -> dict[str, Any]:
    """`beam`: n children per round, `width` beams, `chunk` tokens per round (server's temperature)."""
    return {"sharpening": {"strategy": "beam", "n": n, "beam_width": width, "checkpoint_tokens": chunk}}


WAYS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0, "sharpening": {"strategy": "none"}},
    "default": {},  # what the server does for a request with no settings: greedy + 7 at 0.4
    "default, load wait": {"sharpening": {"load": "wait"}},  # the same, every candidate whatever the load
    "bon8_t1 (old default)": {"temperature": 1.0, "sharpening": {"n": 8}},
    "bon16_t1": {"temperature": 1.0, "sharpening": {"n": 16}},
    "bon8_t0.7": {"temperature": 0.7, "sharpening": {"n": 8}},
    "bon8_t0.4": {"temperature": 0.4, "sharpening": {"n": 8}},
    "greedy+7_t0.55": greedy_plus(8, 0.55),
    "greedy+7_t0.7": greedy_plus(8, 0.7),
    "greedy+7_t0.85": greedy_plus(8, 0.85),
    "greedy+7_t1": greedy_plus(8, 1.0),
    "greedy+3_t0.4": greedy_plus(4, 0.4),
    "greedy+5_t0.4": greedy_plus(6, 0.4),
    "greedy+15_t0.4": greedy_plus(16, 0.4),
    "beam8 (default beam)": {"sharpening": {"strategy": "beam"}},
    "beam16_w4": beam(16, 4, 16),
    "smc8_a4": {"sharpening": {"strategy": "smc", "n": 8, "alpha": ALPHA}},
    "power8_a4": {"temperature": 1.0, "sharpening": {"strategy": "power", "n": 8, "alpha": ALPHA}},
}
# The second view: selection by per-token mean log-likelihood (length_penalty 1).
LP1_WAYS: dict[str, dict[str, Any]] = {
    "default lp1": {"sharpening": {"length_penalty": 1.0}},
    "bon8_t1 lp1": {"temperature": 1.0, "sharpening": {"n": 8, "length_penalty": 1.0}},
    "beam16_w4 lp1": {"sharpening": {"strategy": "beam", "n": 16, "length_penalty": 1.0}},
}


@dataclass(frozen=True)
class Record:
    """One request's outcome: how likely the returned answer is, and what it cost."""

    way: str
    prompt_set: str
    prompt: int
    latency: float
    logprob_sum: float
    num_tokens: int
    generated_tokens: int
    finish_reason: str | None
    text: str
    latencies: tuple[float, ...] = ()  # every timed run of this request; `latency` is their median
