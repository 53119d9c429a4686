"""Client subcommands of the `whetstone` command (load, ab)."""

from __future__ import annotations

from typing import Any

from clients.ab import add_ab_parser
from clients.load import add_load_parser


def add_client_commands(commands: Any) -> None:
    """Register the client subcommands; each sets `run(args) -> exit code` as its default."""
    add_load_parser(commands)
    add_ab_parser(commands)
