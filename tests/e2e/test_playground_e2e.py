"""The playground in real headless Chromium (Debian's package, driven by Playwright) against live servers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import live_server
from tests.fakes import FakeEngine, Script

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_MS = 180_000
API_KEY = "playground-secret"

# Records every candidate card's (index, status, text length) each time the race list changes.
WATCH_CANDIDATES = """side => {
  window.seen = [];
  const list = document.querySelector(`#side-${side} .candidates`);
  new MutationObserver(() => {
    for (const card of list.children) {
      window.seen.push([Number(card.dataset.index), card.dataset.status,
                        card.querySelector('.cand-text').textContent.length]);
    }
  }).observe(list, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from the distribution (the Makefile installs it)."""
    if shutil.which("chromium") is None:
        pytest.fail("chromium is missing; `make browser` installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self, *statuses: int) -> list[str]:
        """Errors other than the browser's own note about an expected failed HTTP status."""
        expected = [f"status of {status}" for status in statuses]
        return [e for e in self.errors if not any(note in e for note in expected)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own storage) with a wide viewport."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def configure(page: Page, side: str, **fields: Any) -> None:
    """Set a side's form fields (select, number and text inputs)."""
    form = page.locator(f"#side-{side.lower()} .config")
    for name, value in fields.items():
        control = form.locator(f"[name={name}]")
        if name == "strategy":
            control.select_option(str(value))
        else:
            control.fill(str(value))


def summary_json(page: Page, side: str) -> dict[str, Any]:
    """The `sharpening` object of the side's response, as the page shows it."""
    text = page.locator(f"#side-{side} .raw-json").text_content() or ""
    result: dict[str, Any] = json.loads(text)
    return result


def record_requests(page: Page) -> list[dict[str, Any]]:
    """The JSON body of every chat request the page sends, in order (the list fills as it runs)."""
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda request: bodies.append(request.post_data_json)
            if request.url.endswith("/v1/chat/completions") else None)
    return bodies


def run_both(page: Page) -> None:
    """Click Run and wait until both sides have shown their summary or an error."""
    page.click("#run")
    page.wait_for_function(
        "() => !document.querySelector('#run').disabled", timeout=RUN_TIMEOUT_MS
    )


def test_a_run_shows_both_sides_candidates_live_pruned_and_selected(server_url: str, page: Page) -> None:
    console = Console(page)
    page.goto(f"{server_url}/")
    assert page.url == f"{server_url}/playground"
    page.wait_for_function("() => document.querySelector('#model').textContent.includes('context')")
    assert page.locator("#key-form").is_hidden()
    page.fill("#prompt", "Write one sentence about the sea.")
    configure(page, "A", max_tokens=48)
    configure(page, "B", max_tokens=64, seed=7)
    page.evaluate(WATCH_CANDIDATES, "b")
    sent = record_requests(page)
    run_both(page)

    # by default, greedy decoding against a plain request: no temperature, the server's sharpening
    page_only = {"return_candidates": True, "stream_candidates": True}  # how the page draws the race
    assert [body["max_tokens"] for body in sent] == [48, 64]
    assert sent[0]["temperature"] == 0 and sent[0]["sharpening"] == {"strategy": "none", **page_only}
    assert "temperature" not in sent[1] and sent[1]["sharpening"] == {"seed": 7, **page_only}

    for side in ("A", "B"):
        assert page.locator(f"#side-{side.lower()} .side-error").is_hidden()
        assert page.locator(f"#side-{side.lower()} .summary dd").count() == 5
    a, b = summary_json(page, "a"), summary_json(page, "b")
    assert a["strategy"] == "none" and b["strategy"] == "best_of_n" and b["n"] == 8
    assert b["candidate_temperatures"] == [0.0, 0.4]  # the shipped default: greedy + 7 at 0.4
    # the greedy answer on the page is the selected candidate's text
    assert page.locator("#side-a .answer").text_content() == a["candidates"][0]["text"]
    assert page.locator("#side-a .cand[data-status=selected]").get_attribute("data-index") == "0"

    cards = page.locator("#side-b .cand")
    assert cards.count() == 8
    seen: list[list[Any]] = page.evaluate("window.seen")
    running_lengths = {(i, n) for i, status, n in seen if status == "running"}
    grown = {i for i, _ in running_lengths if len({n for j, n in running_lengths if j == i}) >= 2}
    assert grown, "no candidate's text was seen growing while it ran"

    selected = page.locator("#side-b .cand[data-status=selected]")
    assert selected.count() == 1
    assert selected.get_attribute("data-index") == str(b["selected_index"])
    pruned = page.locator("#side-b .cand[data-status=pruned]")
    assert pruned.count() == b["candidates_pruned"] >= 1
    by_index = {c["index"]: c for c in b["candidates"]}
    for k in range(pruned.count()):
        card = pruned.nth(k)
        index = int(card.get_attribute("data-index") or -1)
        cut_at = by_index[index]["num_tokens"]
        assert by_index[index]["status"] == "pruned"
        assert card.locator(".badge").text_content() == f"pruned at token {cut_at}"
        assert card.locator(".cand-text").text_content() == by_index[index]["text"]
    assert page.locator("#history li").count() == 1
    assert console.unexpected() == []


def test_bad_settings_show_the_servers_message(server_url: str, page: Page) -> None:
    console = Console(page)
    page.goto(f"{server_url}/playground")
    configure(page, "A", max_tokens=4)
    configure(page, "B", strategy="power", alpha=0.5, max_tokens=4)
    run_both(page)
    error = page.locator("#side-b .side-error")
    assert error.is_visible()
    assert "400" in (error.text_content() or "") and "sharpening.alpha" in (error.text_content() or "")
    assert page.locator("#side-a .side-error").is_hidden()  # the good side still ran
    assert page.locator("#side-a .summary dd").count() == 5
    assert console.unexpected(400) == []


@pytest.fixture(scope="module")
def keyed_server_url() -> Iterator[str]:
    """A fake-engine server on loopback that needs an API key (no engine is started)."""
    engine = FakeEngine(scripts=[Script([-0.2, -0.3])] + [Script([-1.5] * 12) for _ in range(3)],
                        step_seconds=0.01)
    with live_server(engine, api_key=API_KEY) as url:
        yield url


def test_a_server_with_a_key_asks_for_it_and_keeps_it_in_session_storage(
    keyed_server_url: str, page: Page
) -> None:
    console = Console(page)
    page.goto(f"{keyed_server_url}/playground")
    page.wait_for_selector("#key-form", state="visible")
    run_both(page)
    error = page.locator("#side-a .side-error")
    assert error.is_visible() and "401" in (error.text_content() or "")

    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    page.wait_for_function("() => document.querySelector('#model').textContent.includes('fake-model')")
    run_both(page)
    assert page.locator("#side-a .side-error").is_hidden()
    assert page.locator("#side-b .cand[data-status=selected]").get_attribute("data-index") == "0"
    assert page.locator("#side-b .cand[data-status=pruned]").count() == 6  # all but the two quick ones
    storage = page.evaluate("() => [JSON.stringify(sessionStorage), JSON.stringify(localStorage)]")
    assert API_KEY in storage[0] and API_KEY not in storage[1]
    assert console.unexpected(401) == []


@pytest.fixture(scope="module")
def fake_server_url() -> Iterator[str]:
    """A fake-engine server on loopback with no key (no engine is started)."""
    with live_server(FakeEngine(step_seconds=0.01)) as url:
        yield url


def test_more_request_fields_reach_the_request_and_bad_json_is_named(
    fake_server_url: str, page: Page
) -> None:
    console = Console(page)
    page.goto(f"{fake_server_url}/playground")
    configure(page, "A", extra="[1]")
    configure(page, "B", strategy="best_of_n", temperature=0.7,
              extra='{"top_p": 0.5, "sharpening": {"n": 2, "greedy_candidate": true}}')
    sent = record_requests(page)
    run_both(page)
    assert "more request fields" in (page.locator("#side-a .side-error").text_content() or "")
    assert len(sent) == 1 and sent[0]["top_p"] == 0.5 and sent[0]["temperature"] == 0.7
    assert sent[0]["sharpening"]["strategy"] == "best_of_n" and sent[0]["sharpening"]["n"] == 2
    b = summary_json(page, "b")
    assert b["n"] == 2 and b["candidate_temperatures"] == [0.0, 0.7]
    assert page.locator("#history li").count() == 1
    assert console.unexpected() == []
