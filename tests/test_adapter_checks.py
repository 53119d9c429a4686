"""Adapter checks before serving, and adapters as extra model names on the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.adapter_checks import (
    AdapterError,
    check_rank,
    load_adapters,
    model_fingerprint,
    parse_lora_spec,
    serving_rank,
)
from tests.fakes import FakeEngine


def base_model(root: Path, name: str = "base") -> Path:
    model = root / name
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"weights of " + name.encode())
    return model


def adapter(root: Path, base: Path, card_sha: str | None = None, **config: object) -> Path:
    path = root / "adapter"
    path.mkdir(exist_ok=True)
    fields = {
        "peft_type": "LORA",
        "r": 8,
        "bias": "none",
        "use_dora": False,
        "base_model_name_or_path": str(base),
    } | config
    (path / "adapter_config.json").write_text(json.dumps(fields))
    (path / "adapter_model.safetensors").write_bytes(b"lora")
    if card_sha is not None:
        (path / "card.json").write_text(json.dumps({"base_model": "x", "base_model_sha256": card_sha}))
    return path


def test_a_valid_adapter_loads_with_its_rank(tmp_path: Path) -> None:
    base = base_model(tmp_path)
    path = adapter(tmp_path, base, card_sha=model_fingerprint(base), r=16)
    (info,) = load_adapters([f"sharp={path}"], base, "base")
    assert (info.name, info.path, info.rank) == ("sharp", path, 16)
    assert serving_rank([info]) == 16


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"r": 12}, "rank 12 cannot be served"),
        ({"bias": "all"}, "bias 'none'"),
        ({"use_dora": True}, "DoRA"),
        ({"peft_type": "IA3"}, "only LoRA"),
        ({"base_model_name_or_path": "/models/other-model"}, "trained on '/models/other-model'"),
    ],
)
def test_adapters_vllm_cannot_serve_are_refused(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    base = base_model(tmp_path)
    path = adapter(tmp_path, base, **config)
    with pytest.raises(AdapterError, match=message):
        load_adapters([f"sharp={path}"], base, "base")


def test_a_card_of_another_base_model_is_refused(tmp_path: Path) -> None:
    base = base_model(tmp_path)
    other = base_model(tmp_path, "other")
    path = adapter(tmp_path, base, card_sha=model_fingerprint(other))
    with pytest.raises(AdapterError, match="trained on another base model"):
        load_adapters([f"sharp={path}"], base, "base")


def test_missing_files_and_bad_specs_are_refused(tmp_path: Path) -> None:
    base = base_model(tmp_path)
    with pytest.raises(AdapterError, match="adapter_config\\.json is missing"):
        load_adapters([f"sharp={tmp_path}"], base, "base")
    path = adapter(tmp_path, base)
    (path / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="has no weights"):
        load_adapters([f"sharp={path}"], base, "base")
    with pytest.raises(AdapterError, match="write NAME=PATH"):
        parse_lora_spec("just-a-path")
    with pytest.raises(AdapterError, match="used twice"):
        load_adapters([f"a={path}", f"a={path}"], base, "base")
    with pytest.raises(AdapterError, match="rank 3"):
        check_rank(3)


async def test_adapters_are_listed_and_selected_by_model_name(make_client) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine()
    async with make_client(engine, lora=["sharp=/adapters/sharp"]) as client:
        models = (await client.get("/v1/models")).json()["data"]
        assert [(m["id"], m["parent"]) for m in models] == [("fake-model", None), ("sharp", "fake-model")]
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        for strategy in ("best_of_n", "none"):
            engine.requests.clear()
            reply = await client.post(
                "/v1/chat/completions", json=body | {"model": "sharp", "sharpening": {"strategy": strategy}}
            )
            assert reply.status_code == 200
            assert reply.json()["model"] == "sharp"
            assert {spec.adapter for _, spec in engine.requests} == {"sharp"}
        engine.requests.clear()
        reply = await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 4})
        assert reply.json()["model"] == "fake-model"
        assert {spec.adapter for _, spec in engine.requests} == {None}
        for path, request in (
            ("/v1/completions", {"prompt": "hi", "max_tokens": 4}),
            ("/v1/responses", {"input": "hi", "max_output_tokens": 4}),
        ):
            engine.requests.clear()
            reply = await client.post(path, json=request | {"model": "sharp"})
            assert reply.json()["model"] == "sharp", path
            assert {spec.adapter for _, spec in engine.requests} == {"sharp"}
        missing = await client.post("/v1/chat/completions", json=body | {"model": "blunt"})
        assert missing.status_code == 404
        assert "'sharp'" in missing.json()["error"]["message"]
