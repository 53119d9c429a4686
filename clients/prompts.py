"""The load generator's built-in prompt set: short, varied chat prompts."""

from __future__ import annotations

from clients.items import Item

LOAD_PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain photosynthesis in two sentences.",
    "What is 17 times 23?",
    "Give me three tips for better sleep.",
    "Translate 'good morning' into Spanish.",
    "What does a compiler do?",
    "Name the planets of the solar system in order.",
    "Suggest a name for a friendly robot.",
    "Why is the sky blue?",
    "Write a one-line Python function that reverses a string.",
    "What is the boiling point of water in Fahrenheit?",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "List four primary sources of renewable energy.",
    "How many days are there in a leap year?",
    "What is the difference between weather and climate?",
    "Write a short thank-you note to a teacher.",
    "Who wrote 'Pride and Prejudice'?",
    "Describe a cat to someone who has never seen one.",
    "What is the square root of 144?",
    "Give an example of a prime number greater than 50.",
    "What are the three states of matter?",
    "Write a limerick about a programmer.",
    "How do vaccines help the immune system?",
)


def load_prompts() -> list[Item]:
    """The built-in prompts as one-message chat items."""
    return [Item(messages=({"role": "user", "content": text},)) for text in LOAD_PROMPTS]
