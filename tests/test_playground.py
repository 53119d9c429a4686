"""The playground page and its static files, the / redirect, and CORS (--allowed-origins)."""

from __future__ import annotations

import argparse

import pytest

from server.cli import add_settings_flags, settings_from
from server.config import Settings
from tests.conftest import ClientFactory


async def test_root_redirects_to_the_playground(make_client: ClientFactory) -> None:
    async with make_client() as client:
        r = await client.get("/")
    assert r.status_code in (302, 307) and r.headers["location"] == "/playground"


async def test_playground_page_and_its_files_are_served_without_outside_resources(
    make_client: ClientFactory,
) -> None:
    async with make_client(api_key="secret") as client:  # the page itself needs no key
        page = await client.get("/playground")
        script = await client.get("/playground/static/playground.js")
        style = await client.get("/playground/static/playground.css")
        missing = await client.get("/playground/static/nope.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/playground/static/playground.js">' in page.text
    assert script.status_code == 200 and "stream_candidates" in script.text
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    assert missing.status_code == 404
    for text in (page.text, script.text, style.text):  # no CDN, nothing fetched from elsewhere
        assert "http://" not in text and "https://" not in text


async def test_page_routes_stay_out_of_the_api_schema(make_client: ClientFactory) -> None:
    async with make_client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/playground" not in paths and "/" not in paths


async def test_cors_is_off_by_default(make_client: ClientFactory) -> None:
    async with make_client() as client:
        r = await client.get("/v1/models", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_allowed_origins_answer_preflight_and_requests(make_client: ClientFactory) -> None:
    async with make_client(allowed_origins="https://app.example.com, https://b.example.com") as client:
        preflight = await client.options("/v1/chat/completions", headers={
            "Origin": "https://b.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        })
        allowed = await client.get("/v1/models", headers={"Origin": "https://app.example.com"})
        other = await client.get("/v1/models", headers={"Origin": "https://evil.example.com"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://b.example.com"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(("given", "origins"), [
    ("", []), ("*", ["*"]), ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
])
def test_allowed_origins_take_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch, given: str, origins: list[str]
) -> None:
    monkeypatch.setenv("WHETSTONE_ALLOWED_ORIGINS", given)
    assert Settings().allowed_origins == origins


def test_allowed_origins_flag() -> None:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    args = parser.parse_args(["--allowed-origins", "http://localhost:3000,http://127.0.0.1:3000"])
    assert settings_from(args).allowed_origins == ["http://localhost:3000", "http://127.0.0.1:3000"]
