"""The rooms import one way: every module's imports, walked with `ast`, follow the allowed directions.

Run alone with `pytest tests/test_import_directions.py`. Imports inside functions and under
TYPE_CHECKING count like any other: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("server", "clients", "training", "benchmarks", "tests")

# What the modules under each package may import from the project; the longest package naming a
# module decides. Bottom to top: server, clients, training, benchmarks, tests.
ALLOWED = {
    "server": ("server",),
    "server.sharpening": ("server.sharpening", "server.errors"),  # the pure core: no I/O, no engine
    "server.errors": (),  # the error tree sits below everything that raises
    # request -> job: the bodies and every rule of their fields; never the service, endpoints or formats
    "server.requests": ("server.requests", "server.errors", "server.sharpening", "server.config",
                        "server.engines", "server.jobs", "server.tools", "server.adapter_registry",
                        "server.precision"),
    # results -> OpenAI's wire formats, below the service: streams drive a Runner, not the service
    "server.formats": ("server.formats", "server.errors", "server.sharpening", "server.jobs", "server.race",
                       "server.tools", "server.requests.openai", "server.requests.responses"),
    "clients": ("clients", "server.sharpening"),  # answer patterns come from the pure core
    "training": ("training", "clients", "server"),
    "benchmarks": ("benchmarks", "training", "clients", "server"),
    "benchmarks.common": ("benchmarks.common", "training", "clients", "server"),  # no study
    "tests": ROOMS,
}

# Packages serving must never load, whatever the command line does before `whetstone serve` runs.
TRAINING_ONLY = ("trl", "peft", "datasets")


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` or lies under it."""
    return module == package or module.startswith(package + ".")


@cache
def modules() -> dict[str, Path]:
    """Every module of the project by dotted name (a package by its own name)."""
    found = {}
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every dotted name `module` imports (relative imports resolved), each with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


@cache
def graph() -> dict[str, dict[str, int]]:
    """Module -> the project modules it imports -> the first line importing each."""
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules().items():
        edges[module] = {}
        for name, line in imported(module, path):
            while name not in modules() and "." in name:  # a name, not a module: the module holding it
                name = name.rpartition(".")[0]
            if name in modules() and name != module:
                edges[module].setdefault(name, line)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(edges):
        if node not in order:
            visit(node)
    return found


def test_every_import_goes_the_allowed_way() -> None:
    wrong = []
    for module, targets in graph().items():
        rule = max((p for p in ALLOWED if within(module, p)), key=len)
        wrong += [f"{modules()[module].relative_to(ROOT)}:{line} imports {target}"
                  for target, line in targets.items() if not any(within(target, p) for p in ALLOWED[rule])]
    assert not wrong, "imports against ALLOWED in tests/test_import_directions.py:\n" + "\n".join(wrong)


def test_no_two_modules_import_each_other_even_through_others() -> None:
    assert cycles({module: set(targets) for module, targets in graph().items()}) == []


def test_no_two_rooms_import_each_other() -> None:
    rooms: dict[str, set[str]] = {room: set() for room in ROOMS}
    for module, targets in graph().items():
        rooms[module.partition(".")[0]] |= {target.partition(".")[0] for target in targets}
    assert cycles({room: targets - {room} for room, targets in rooms.items()}) == []


def test_only_the_vllm_engine_imports_vllm() -> None:
    importers = {module for module, path in modules().items() if not within(module, "tests")
                 for name, _ in imported(module, path) if within(name, "vllm")}
    assert importers == {"server.engines.vllm"}


def test_the_checker_sees_lazy_imports_and_cycles() -> None:
    assert graph()["training.cli"].keys() >= {"server.cli", "clients.cli", "training.sft_cli"}
    assert "training.sft_train" in graph()["training.sft_cli"]  # imported inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


SERVING_IMPORTS = textwrap.dedent(
    f"""
    import importlib, pkgutil, sys
    import server
    from server.app import create_app
    from server.config import Settings
    from training.cli import build_parser

    for module in pkgutil.walk_packages(server.__path__, "server."):
        if module.name != "server.engines.vllm":  # vllm itself is no concern of this test
            importlib.import_module(module.name)
    build_parser().parse_args(["serve"])  # the console script, up to where serving starts
    create_app(Settings(upstreams=["http://127.0.0.1:9"]))
    print(sorted(name for name in sys.modules if name.partition(".")[0] in {set(TRAINING_ONLY)!r}))
    """
)


def test_serving_never_imports_the_training_libraries() -> None:
    done = subprocess.run([sys.executable, "-c", SERVING_IMPORTS], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
