"""Work items for the load generator and the A/B comparer: reading them and sending one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from clients.client import AsyncWhetstoneClient
from clients.errors import WhetstoneError
from clients.results import Completion

Endpoint = Literal["chat", "completions"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat", "completions")


class InputError(WhetstoneError):
    """A data file or command-line value that cannot be used; the message says why."""


@dataclass(frozen=True)
class Item:
    """One prompt: chat `messages` or a plain `prompt`, and optionally its reference answer."""

    messages: tuple[dict[str, Any], ...] | None = None
    prompt: str | None = None
    answer: str | None = None

    def chat_messages(self) -> list[dict[str, Any]]:
        """The conversation to send; a plain prompt becomes one user message."""
        if self.messages is not None:
            return list(self.messages)
        return [{"role": "user", "content": self.prompt or ""}]

    def text_prompt(self) -> str:
        """The prompt for /v1/completions; chat items have none."""
        if self.prompt is None:
            raise InputError("an item with `messages` needs the chat endpoint")
        return self.prompt

    def as_json(self) -> dict[str, Any]:
        """The item as it would appear in a JSONL file."""
        data: dict[str, Any] = {"prompt": self.prompt}
        if self.messages is not None:
            data = {"messages": list(self.messages)}
        return data if self.answer is None else data | {"answer": self.answer}


def item_from_json(data: Any) -> Item:
    """An Item from one decoded JSONL record with `prompt` or `messages`, maybe `answer`."""
    if not isinstance(data, dict):
        raise InputError("each line must be a JSON object")
    answer = data.get("answer")
    answer = None if answer is None else str(answer)
    messages = data.get("messages")
    if messages is not None:
        if not (isinstance(messages, list) and messages
                and all(isinstance(m, dict) and "role" in m for m in messages)):
            raise InputError("`messages` must be a non-empty list of {role, content} objects")
        return Item(messages=tuple(messages), answer=answer)
    prompt = data.get("prompt")
    if isinstance(prompt, str) and prompt:
        return Item(prompt=prompt, answer=answer)
    raise InputError("each object needs a non-empty string `prompt` or a `messages` list")


def read_items(path: str | Path) -> list[Item]:
    """Items from a JSONL file (blank lines skipped); errors name the file and line."""
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(item_from_json(json.loads(line)))
        except (json.JSONDecodeError, InputError) as exc:
            raise InputError(f"{path}:{number}: {exc}") from exc
    if not items:
        raise InputError(f"{path} holds no items")
    return items


def check_endpoint(items: Sequence[Item], endpoint: Endpoint) -> None:
    """Fail early when the completions endpoint is asked to send chat conversations."""
    if endpoint == "completions" and any(item.prompt is None for item in items):
        raise InputError("items with `messages` need --endpoint chat")


async def ask(
    client: AsyncWhetstoneClient, item: Item, endpoint: Endpoint, fields: dict[str, Any]
) -> Completion:
    """Send one item with the given request fields to the chosen endpoint."""
    if endpoint == "chat":
        return await client.chat(item.chat_messages(), **fields)
    return await client.complete(item.text_prompt(), **fields)
