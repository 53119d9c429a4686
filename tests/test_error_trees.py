"""One error tree per room: every exception class a room defines derives from the room's root, and no
two exception classes in the project share a name. Read with `ast`, so nothing is imported."""

from __future__ import annotations

import ast
import builtins
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOTS = {"server": "ServerError", "clients": "WhetstoneError", "training": "TrainingError"}
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


@cache
def classes() -> list[tuple[str, str, list[str]]]:
    """(room, class name, base names) of every class defined in server/, clients/ and training/."""
    found = []
    for room in ROOTS:
        for path in sorted((ROOT / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b).rpartition(".")[2]
                             for b in node.bases]
                    found.append((room, node.name, bases))
    return found


@cache
def exception_classes() -> dict[str, tuple[str, list[str]]]:
    """Every exception class by name: its room and bases (a class whose base is an exception)."""
    everything = classes()
    known: dict[str, tuple[str, list[str]]] = {}
    grew = True
    while grew:
        grew = False
        for room, name, bases in everything:
            if name not in known and any(b in BUILTIN_EXCEPTIONS or b in known for b in bases):
                known[name] = (room, bases)
                grew = True
    return known


def ancestors(name: str, known: dict[str, tuple[str, list[str]]]) -> set[str]:
    """The project exception classes `name` derives from, itself included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in known and current not in seen:
            seen.add(current)
            todo += known[current][1]
    return seen


def test_every_exception_derives_from_its_rooms_root() -> None:
    known = exception_classes()
    astray = [f"{room}: {name}" for name, (room, _) in known.items()
              if ROOTS[room] not in ancestors(name, known)]
    assert not astray, "exceptions outside their room's error tree:\n" + "\n".join(astray)


def test_no_two_exception_classes_share_a_name() -> None:
    known = exception_classes()
    names = [name for _, name, _ in classes() if name in known]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_the_checker_finds_the_trees() -> None:
    known = exception_classes()
    assert {"ServerError", "InvalidSharpening", "EngineError", "APIError", "SftDataError"} <= known.keys()
    assert ancestors("ProcessedLogprobs", known) >= {"UpstreamRefused", "EngineError", "ServerError"}
