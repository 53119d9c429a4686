"""One module per endpoint, each reading prepare -> run or stream -> format (common.py holds the shape)."""

from __future__ import annotations

from fastapi import APIRouter

from server.endpoints import chat, completions, health, models, responses, tokenize

ROUTERS: tuple[APIRouter, ...] = tuple(
    m.router for m in (chat, completions, responses, models, tokenize, health)
)
