"""The dashboard and alert rules of deploy/ on real data: Debian's Prometheus scrapes a live server.

Two servers are scraped under job "whetstone": the session's real one (vLLM engine) and one in
upstream mode in front of the fake vLLM server (for the per-upstream series). After some traffic,
every query of the Grafana dashboard and of the rules must return data. promtool checks the rules
and runs their unit tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from clients.processes import free_port, spawned

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "whetstone-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "whetstone-dashboard.json"
# a Grafana variable's stand-in when Prometheus is queried directly
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}
THRESHOLD = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[-+0-9.e]+\s*$")
SCRAPE_SECONDS = 1



def promtool(*args: str) -> str:
    """Run promtool; fail the test with its output when it fails."""
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool("check", "rules", str(RULES))
    promtool("test", "rules", str(RULES.with_name("whetstone-rules.test.yml")))


def dashboard_queries() -> list[str]:
    """Every query of the dashboard's panels, with Grafana's variables filled in."""
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            queries.append(expr)
    return queries


def rule_queries() -> list[str]:
    """Each recording rule's series, and each alert's expression without its threshold."""
    queries = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                queries.append(rule["record"])
            else:
                stripped = THRESHOLD.sub("", rule["expr"])
                assert stripped != rule["expr"], f"alert {rule['alert']} is not 'EXPR > N'"
                queries.append(stripped)
    return queries


@pytest.fixture(scope="module")
def upstream_mode_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """whetstone in upstream mode in front of the fake vLLM server (two light processes)."""
    logs = tmp_path_factory.mktemp("upstream")
    fake_port, port = free_port(), free_port()
    fake = [sys.executable, "-m", "tests.fake_upstream", "--port", str(fake_port)]
    with spawned(fake, f"http://127.0.0.1:{fake_port}", logs / "fake.log") as fake_url:
        front = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--upstream", fake_url]
        with spawned(front, f"http://127.0.0.1:{port}", logs / "front.log", startup_timeout=120) as url:
            yield url


@pytest.fixture(scope="module")
def prometheus_url(
    server_url: str, upstream_mode_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Debian's Prometheus scraping both servers every second, with the rules loaded."""
    home = tmp_path_factory.mktemp("prometheus")
    targets = [url.removeprefix("http://") for url in (server_url, upstream_mode_url)]
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "whetstone", "static_configs": [{"targets": targets}]}],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    promtool("check", "config", str(home / "prometheus.yml"))
    url = f"http://127.0.0.1:{free_port()}"
    command = ["prometheus", f"--config.file={home / 'prometheus.yml'}",
               f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address={url.removeprefix('http://')}"]
    with (home / "prometheus.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: httpx.get(f"{url}/-/ready").status_code == 200, 60)
            yield url
        finally:
            process.terminate()
            process.wait(30)


def wait_for(condition: Any, seconds: float) -> None:
    """Poll `condition` (connection errors count as false) until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"still not true after {seconds} s")


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The instant query's result (a vector of series)."""
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30).json()
    assert reply["status"] == "success", (expr, reply)
    return list(reply["data"]["result"])


def traffic(url: str) -> int:
    """A few sharpened, streamed and plain requests; how many were sent."""
    bodies = [
        {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 12,
         "sharpening": {"n": 4}},
        {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8, "stream": True,
         "sharpening": {"n": 2}},
        {"messages": [{"role": "user", "content": "Count to 3."}], "max_tokens": 8,
         "sharpening": {"strategy": "none"}},
    ]
    for body in bodies:
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
    return len(bodies)


def test_every_dashboard_and_rule_query_returns_data(
    prometheus_url: str, server_url: str, upstream_mode_url: str
) -> None:
    for round_ in (1, 2):  # a series' first sample is no increase: rates need a second round
        sent = round_ * sum(traffic(url) for url in (server_url, upstream_mode_url))
        wait_for(lambda sent=sent: sum_of(prometheus_url, "sum(whetstone_requests_total)") >= sent, 60)
        time.sleep(3 * SCRAPE_SECONDS)  # a few more scrapes and rule evaluations after the traffic

    rules = httpx.get(f"{prometheus_url}/api/v1/rules").json()["data"]["groups"]
    broken = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"]
    assert not broken
    empty = [q for q in dashboard_queries() + rule_queries() if not has_a_number(query(prometheus_url, q))]
    assert not empty, f"queries without data: {empty}"
    instances = httpx.get(f"{prometheus_url}/api/v1/label/instance/values",
                          params={"match[]": "whetstone_engine_serving"}).json()["data"]
    assert len(instances) == 2  # the dashboard's server picker lists both


def sum_of(prometheus: str, expr: str) -> float:
    """A one-series query's value (0 while it has none)."""
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else 0.0


def has_a_number(result: list[dict[str, Any]]) -> bool:
    """True when some series of the result has a finite value (NaN: no events in the window)."""
    return any(float(series["value"][1]) == float(series["value"][1]) for series in result)
