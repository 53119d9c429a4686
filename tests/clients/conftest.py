"""Fixtures for client tests: the app on a fake engine, in-process or on a real local port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from clients.client import AsyncWhetstoneClient
from server.app import create_app
from server.config import Settings
from tests.fakes import FakeEngine

ServerFactory = Callable[..., AbstractContextManager[str]]


@contextmanager
def running_server(engine: FakeEngine | None = None, **settings: Any) -> Iterator[str]:
    """Serve the app on a fake engine over real HTTP on a free local port; yields its URL."""
    app = create_app(Settings(**settings), engine=engine or FakeEngine())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test server did not start")
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def serve() -> ServerFactory:
    """Factory: `with serve(engine, **settings) as url` runs a real server for the block."""
    return running_server


@pytest.fixture
def fake_server_url() -> Iterator[str]:
    """A real local server on the default fake engine."""
    with running_server() as url:
        yield url


def in_process_client(
    engine: FakeEngine | None = None, settings: Settings | None = None, **options: Any
) -> AsyncWhetstoneClient:
    """An async client talking to a fresh app over ASGI (no sockets, no retries by default)."""
    app = create_app(settings or Settings(), engine=engine or FakeEngine())
    transport = httpx.ASGITransport(app=app)
    options = {"max_retries": 0} | options
    return AsyncWhetstoneClient("http://test", transport=transport, **options)


AsgiClientFactory = Callable[..., AsyncWhetstoneClient]


@pytest.fixture
def asgi_client() -> AsgiClientFactory:
    """Factory: `async with asgi_client(engine, settings, **client_options) as client`."""
    return in_process_client
