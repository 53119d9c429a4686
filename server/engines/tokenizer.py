"""A Hugging Face tokenizer used off the event loop: chat template and plain prompts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any


class Tokenizer:
    """Wraps a transformers tokenizer; every call runs in a worker thread."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    @classmethod
    async def load(cls, path: str) -> Tokenizer:
        """Load a tokenizer from a local directory (transformers is imported only here)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise RuntimeError("--tokenizer needs transformers: pip install transformers") from exc
        return cls(await asyncio.to_thread(AutoTokenizer.from_pretrained, path))

    @property
    def raw(self) -> Any:
        """The wrapped transformers tokenizer (for vLLM calls that take one)."""
        return self._tokenizer

    async def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
        chat_template: str | None = None,
    ) -> list[int]:
        """Apply the chat template (the model's unless one is given; tools rendered by it), opening
        the assistant's turn unless told not to, and tokenize."""
        return await asyncio.to_thread(
            chat_prompt_ids, self._tokenizer, messages, add_generation_prompt, tools, chat_template
        )

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Tokenize a plain prompt (with the model's special prefix tokens unless told not to)."""
        return await asyncio.to_thread(text_prompt_ids, self._tokenizer, text, add_special_tokens)

    async def decode(self, token_ids: Sequence[int]) -> str:
        """The text of some token ids, special tokens included."""
        return str(await asyncio.to_thread(self._tokenizer.decode, list(token_ids)))

    async def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        """Each token id's vocabulary string."""
        strings = await asyncio.to_thread(self._tokenizer.convert_ids_to_tokens, list(token_ids))
        return [str(t) for t in strings]


def chat_prompt_ids(
    tokenizer: Any,
    messages: Sequence[dict[str, Any]],
    add_generation_prompt: bool = True,
    tools: Sequence[dict[str, Any]] | None = None,
    chat_template: str | None = None,
) -> list[int]:
    """Token ids of chat messages as the server prompts the engine (also the RL reward's path)."""
    ids = tokenizer.apply_chat_template(
        list(messages),
        tools=list(tools) if tools else None,
        chat_template=chat_template,
        add_generation_prompt=add_generation_prompt,
        tokenize=True,
        return_dict=False,
    )
    return list(ids)


def text_prompt_ids(tokenizer: Any, text: str, add_special_tokens: bool = True) -> list[int]:
    """Token ids of a plain-text prompt as the server prompts the engine."""
    return list(tokenizer.encode(text, add_special_tokens=add_special_tokens))
