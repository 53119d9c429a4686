"""Items: JSONL reading, the built-in prompts and the arithmetic data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clients.datasets import arithmetic, builtin_dataset
from clients.items import InputError, Item, check_endpoint, item_from_json, read_items
from clients.prompts import LOAD_PROMPTS, load_prompts


def test_read_items_with_prompts_messages_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    rows = [{"prompt": "2+2=", "answer": 4},
            {"messages": [{"role": "user", "content": "hi"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = read_items(path)
    assert items[0] == Item(prompt="2+2=", answer="4")
    assert items[0].chat_messages() == [{"role": "user", "content": "2+2="}]
    assert items[1].chat_messages() == [{"role": "user", "content": "hi"}]
    assert [item.as_json() for item in items] == [{"prompt": "2+2=", "answer": "4"}, rows[1]]
    with pytest.raises(InputError, match="chat endpoint"):
        items[1].text_prompt()
    with pytest.raises(InputError, match="--endpoint chat"):
        check_endpoint(items, "completions")
    check_endpoint(items[:1], "completions")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "ok"}\nnot json\n', ":2:"),
        ('{"text": "no prompt"}\n', "needs a non-empty"),
        ('["a list"]\n', "JSON object"),
        ('{"messages": []}\n', "non-empty list"),
        ("\n\n", "holds no items"),
    ],
)
def test_bad_item_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_items(path)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_items("/nonexistent/items.jsonl")
    with pytest.raises(InputError):
        item_from_json({"prompt": ""})


def test_builtin_prompts_are_many_and_varied() -> None:
    assert len(LOAD_PROMPTS) >= 20 and len(set(LOAD_PROMPTS)) == len(LOAD_PROMPTS)
    assert all(item.messages and item.messages[0]["role"] == "user" for item in load_prompts())


def test_arithmetic_is_deterministic_and_correct() -> None:
    items = arithmetic()
    assert len(items) == 30 and items == builtin_dataset("arithmetic") == arithmetic()
    for item in items:
        question = item.chat_messages()[0]["content"]
        expression = question.removeprefix("What is ").split("?")[0]
        assert str(eval(expression)) == item.answer  # the questions are plain a op b
    assert {q.chat_messages()[0]["content"].split()[3] for q in items} == {"+", "-", "*"}
    with pytest.raises(InputError, match="arithmetic"):
        builtin_dataset("gsm8k")
