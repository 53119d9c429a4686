"""Shared fixtures: the app on a fake engine, in-process through httpx or on a real loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.config import Settings
from tests.fakes import FakeEngine

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def exact_ties(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake-engine tests rank and certify scores the same on any host: no tie tolerance, and the
    float32 score bound, whatever dtype the host's CPU would choose."""
    if request.node.get_closest_marker("e2e") is None:
        monkeypatch.setenv("WHETSTONE_TIE_TOLERANCE", "0")
        monkeypatch.setenv("WHETSTONE_DTYPE", "float32")


@asynccontextmanager
async def app_client(engine: FakeEngine | None = None, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a fresh app (lifespan included) over ASGI."""
    app = create_app(Settings(**settings), engine=engine or FakeEngine())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def make_client() -> ClientFactory:
    """Factory for in-process clients: `async with make_client(engine, **settings) as c`."""
    return app_client


@contextmanager
def live_server(engine: FakeEngine | None = None, **settings: Any) -> Iterator[str]:
    """A real uvicorn server on loopback (in a thread) around a fake engine; yields its URL."""
    with serve_app(create_app(Settings(**settings), engine=engine or FakeEngine())) as url:
        yield url


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Any ASGI app on a real loopback port, served by uvicorn in a thread; yields its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
