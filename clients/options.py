"""Command-line pieces the client commands share: server flags, value parsers, output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from clients.client import AsyncWhetstoneClient
from clients.items import ENDPOINTS
from server.sharpening.patterns import PatternError, compile_pattern


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object such as '{"strategy": "best_of_n", "n": 4}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def regex(text: str) -> str:
    """argparse type: a regular expression the linear-time engine (RE2) accepts."""
    try:
        compile_pattern(text)
    except PatternError as exc:
        raise argparse.ArgumentTypeError(f"the pattern {text!r} {exc}") from None
    return text


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, such as '1,2,4,8'."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected numbers such as 1,2,4,8, got {text!r}")
    return [positive_int(part) for part in parts]


def add_server_options(
    parser: argparse.ArgumentParser, max_retries: int, max_tokens: int | None = None
) -> None:
    """--url, --api-key, --timeout, --max-retries, --endpoint, --max-tokens, --concurrency."""
    group = parser.add_argument_group("server")
    group.add_argument("--url", default="http://127.0.0.1:8000",
                       help="base URL of the whetstone server (default: %(default)s)")
    group.add_argument("--api-key", default=None,
                       help="sent as 'Authorization: Bearer KEY' when the server requires one")
    group.add_argument("--timeout", type=positive_float, default=600.0, metavar="SECONDS",
                       help="per-request timeout (default: %(default)s)")
    group.add_argument("--max-retries", type=int, default=max_retries, metavar="N",
                       help="retries on 429, 503 and connection errors, with exponential "
                       "backoff that honours Retry-After (default: %(default)s)")
    group.add_argument("--endpoint", choices=ENDPOINTS, default="chat",
                       help="chat: /v1/chat/completions (a `prompt` becomes one user message); "
                       "completions: /v1/completions, for `prompt` items (default: %(default)s)")
    shown = "the server's" if max_tokens is None else max_tokens
    group.add_argument("--max-tokens", type=positive_int, default=max_tokens, metavar="N",
                       help=f"token limit per candidate (default: {shown})")
    group.add_argument("--concurrency", type=positive_int, default=4, metavar="N",
                       help="requests in flight at once (default: %(default)s)")


def client_from(
    args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncWhetstoneClient:
    """An async client configured by the server options (`transport` replaces the network)."""
    return AsyncWhetstoneClient(args.url, api_key=args.api_key, timeout=args.timeout,
                                max_retries=max(0, args.max_retries),
                                max_connections=args.concurrency, transport=transport)


def progress_bar(total: int | None, description: str) -> tqdm[Any]:
    """A tqdm bar on stderr, shown only when stderr is a terminal."""
    return tqdm(total=total, desc=description, unit="req", file=sys.stderr, disable=None,
                dynamic_ncols=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, creating parent directories."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def fail(command: str, message: str) -> int:
    """Print a usage-level error for `whetstone COMMAND` and return exit code 2."""
    print(f"whetstone {command}: error: {message}", file=sys.stderr)
    return 2
