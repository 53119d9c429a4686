"""The serving commands of `whetstone` (serve, prepare-model) and the parser every room adds to.

Flags come from the Settings model. The console script itself (training/cli.py) adds the client and
training subcommands; `python -m server.cli` runs the serving commands alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from server.config import Settings


def _flag_type(annotation: Any) -> tuple[Any, list[str] | None]:
    """argparse `type` and `choices` for a Settings field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return str, list(typing.get_args(annotation))
    if annotation in (int, float):
        return annotation, None
    if typing.get_origin(annotation) is dict or annotation is dict:
        return json.loads, None
    return str, None


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field, help from its description; env vars stay the fallback."""
    for name, info in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = _help(name, info)
        if info.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        kind, choices = _flag_type(info.annotation)
        repeated = typing.get_origin(info.annotation) is list
        singular = [flag.removesuffix("s")] if repeated and flag.endswith("s") else []  # --upstream URL
        parser.add_argument(
            flag,
            *singular,
            dest=name,
            type=kind,
            choices=choices,
            default=None,
            action="append" if repeated else "store",
            help=help_text,
            metavar=None if choices else name.upper(),
        )


def _help(name: str, info: FieldInfo) -> str:
    default = info.get_default(call_default_factory=True)
    shown = json.dumps(default) if isinstance(default, dict | list) else default
    shown = "none" if default is None else shown
    return f"{info.description} [env WHETSTONE_{name.upper()}, default {shown}]"


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from flags given on the command line, then env vars, then defaults."""
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    return Settings(**given)


def in_process_flags(settings: Settings) -> list[str]:
    """The given flags only the in-process engine honours (adapters, tool parser, chat template)."""
    given = {
        "--lora": settings.lora,
        "--adapter-slots": settings.adapter_slots,
        "--tool-call-parser": settings.tool_call_parser,
        "--chat-template": settings.chat_template,
    }
    return [flag for flag, value in given.items() if value]


def serve(settings: Settings) -> None:
    """Run the HTTP server until interrupted."""
    import uvicorn

    from server.adapter_checks import AdapterError
    from server.app import create_app
    from server.embedded import EmbeddedModelMissing

    if settings.model and not settings.upstreams and not Path(settings.model).is_dir():
        sys.exit(
            f"whetstone: --model {settings.model} is not a directory; give a local Hugging Face model folder"
        )
    if settings.upstreams and (local_only := in_process_flags(settings)):
        sys.exit(
            f"whetstone: {', '.join(local_only)} need the in-process vLLM engine; "
            "upstream mode draws from servers that have their own"
        )
    try:
        app = create_app(settings)
    except (EmbeddedModelMissing, AdapterError) as exc:
        sys.exit(f"whetstone: {exc}")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=settings.shutdown_timeout,  # SIGTERM drains, then aborts
    )
    server = uvicorn.Server(config)
    supervisor = app.state.supervisor
    supervisor.on_give_up = lambda: setattr(server, "should_exit", True)
    server.run()
    if supervisor.gave_up:
        sys.exit(f"whetstone: exiting because the engine failed for good ({supervisor.reason})")


def prepare_model() -> None:
    """Convert the embedded model once and print its directory last."""
    from server.embedded import prepare_embedded_model

    print(prepare_embedded_model())


def build_parser(*command_groups: Callable[[Any], None]) -> argparse.ArgumentParser:
    """The top-level parser: serve and prepare-model, then the subcommands each group registers."""
    parser = argparse.ArgumentParser(
        prog="whetstone",
        description="An OpenAI-compatible server that samples several candidates and returns "
        "the one the model itself finds most likely (inference-time sharpening).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve the OpenAI API with sharpening",
        description="Serve /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics.",
    )
    add_settings_flags(serve_parser)
    commands.add_parser(
        "prepare-model",
        help="prepare the embedded model and print its directory",
        description="Convert the embedded SmolLM2-135M-Instruct GGUF into a Hugging Face "
        "directory under $WHETSTONE_HOME (once); print that directory as the last line.",
    )
    for add_commands in command_groups:
        add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> None:
    """Run one subcommand of `parser` (default: the serving commands alone); others exit with `run(args)`."""
    args = (parser or build_parser()).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request in `load` and `ab`
    if args.command == "prepare-model":
        prepare_model()
        return
    if args.command != "serve":
        sys.exit(args.run(args))
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        sys.exit(f"whetstone: invalid settings:\n{exc}")
    logging.getLogger().setLevel(settings.log_level.upper())
    serve(settings)


if __name__ == "__main__":
    main()
