"""The playground page: GET /playground (and / redirects there), static files from server/static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/playground/static"

page = APIRouter(include_in_schema=False)


@page.get("/")
async def root() -> RedirectResponse:
    """The server's front page is the playground."""
    return RedirectResponse("/playground")


@page.get("/playground")
async def playground() -> FileResponse:
    """The playground: one hand-written page, no build step, no outside resources."""
    return FileResponse(STATIC_DIR / "playground.html", media_type="text/html")


def static_files() -> StaticFiles:
    """The page's scripts and styles, served under STATIC_PATH."""
    return StaticFiles(directory=STATIC_DIR)
