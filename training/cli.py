"""The `whetstone` console script: the serving, client and training subcommands in one parser.

It lives in the training room because training is the one room that may import both the server
and the clients. Data-parallel training runs it as `accelerate launch -m training.cli sharpen-sft ...`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from clients.cli import add_client_commands
from server import cli as serving
from training.rl_cli import add_sharpen_rl
from training.sft_cli import add_sharpen_sft
from training.traces import add_traces_command


def build_parser() -> argparse.ArgumentParser:
    """serve, prepare-model, load, ab, sharpen-sft, sharpen-rl and traces."""
    return serving.build_parser(add_client_commands, add_sharpen_sft, add_sharpen_rl, add_traces_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `whetstone` console script."""
    serving.main(argv, build_parser())


if __name__ == "__main__":
    main()
