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

    async def encode_chat(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        """Apply the model's chat template and tokenize."""
        ids = await asyncio.to_thread(
            self._tokenizer.apply_chat_template,
            list(messages),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
        )
        return list(ids)

    async def encode(self, text: str) -> list[int]:
        """Tokenize a plain prompt (with the model's special prefix tokens, if any)."""
        return list(await asyncio.to_thread(self._tokenizer.encode, text))
