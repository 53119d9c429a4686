"""Loading and unloading LoRA adapters while serving (vLLM's endpoints), on the fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.config import Settings
from tests.conftest import ClientFactory
from tests.fakes import FakeEngine

KEY = {"Authorization": "Bearer sekrit"}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A base model directory (config and weights are what an adapter's check reads)."""
    path = tmp_path / "base-model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def adapter(tmp_path: Path, name: str, base: Path, **config: object) -> Path:
    """A LoRA adapter directory trained (as its config says) on `base`."""
    path = tmp_path / name
    path.mkdir()
    fields = {"peft_type": "LORA", "r": 8, "bias": "none", "base_model_name_or_path": str(base)} | config
    (path / "adapter_config.json").write_text(json.dumps(fields))
    (path / "adapter_model.safetensors").write_bytes(b"lora")
    return path


async def test_load_serve_and_unload_without_a_restart(
    make_client: ClientFactory, base: Path, tmp_path: Path
) -> None:
    engine = FakeEngine()
    sharp = adapter(tmp_path, "sharp", base)
    async with make_client(engine, model=str(base), api_key="sekrit", adapter_slots=1) as client:
        loaded = await client.post("/v1/load_lora_adapter", headers=KEY,
                                   json={"lora_name": "sharp", "lora_path": str(sharp)})
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["id"] == "sharp" and loaded.json()["parent"] == "fake-model"
        assert engine.loaded_adapters == {"sharp": str(sharp)}
        models = (await client.get("/v1/models", headers=KEY)).json()["data"]
        assert [m["id"] for m in models] == ["fake-model", "sharp"]
        reply = await client.post("/v1/chat/completions", headers=KEY, json=CHAT | {"model": "sharp"})
        assert reply.status_code == 200 and reply.json()["model"] == "sharp"
        assert engine.requests[-1][1].adapter == "sharp"

        gone = await client.post("/v1/unload_lora_adapter", headers=KEY, json={"lora_name": "sharp"})
        assert gone.status_code == 200 and gone.json()["id"] == "sharp"
        assert engine.loaded_adapters == {}
        after = await client.post("/v1/chat/completions", headers=KEY, json=CHAT | {"model": "sharp"})
        assert after.status_code == 404
        again = await client.post("/v1/unload_lora_adapter", headers=KEY, json={"lora_name": "sharp"})
        assert again.status_code == 404 and again.json()["error"]["code"] == "model_not_found"


async def test_adapter_endpoints_need_the_api_key(
    make_client: ClientFactory, base: Path, tmp_path: Path
) -> None:
    engine = FakeEngine()
    sharp = adapter(tmp_path, "sharp", base)
    async with make_client(engine, model=str(base), api_key="sekrit", adapter_slots=1) as client:
        body = {"lora_name": "sharp", "lora_path": str(sharp)}
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.post("/v1/load_lora_adapter", headers=headers, json=body)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        refused = await client.post("/v1/unload_lora_adapter", json={"lora_name": "sharp"})
        assert refused.status_code == 401
    assert engine.loaded_adapters == {}
    with pytest.raises(ValueError, match="--adapter-slots needs --api-key"):
        Settings(adapter_slots=1)


@pytest.mark.parametrize(
    ("name", "config", "status", "message"),
    [
        ("fake-model", {}, 400, "'fake-model' is already served"),
        ("on-other", {"base_model_name_or_path": "/models/other"}, 400, "was trained on '/models/other'"),
        ("dora", {"use_dora": True}, 400, "is a DoRA adapter"),
        ("big", {"r": 32}, 400, "rank 32; this server loads ranks up to --max-lora-rank 16"),
        ("bad name!", {}, 400, "lora_name"),
    ],
)
async def test_unservable_adapters_are_refused_before_the_engine_sees_them(
    make_client: ClientFactory, base: Path, tmp_path: Path, name: str, config: dict[str, object], status: int,
    message: str,
) -> None:
    engine = FakeEngine()
    path = adapter(tmp_path, "a", base, **config)
    async with make_client(engine, model=str(base), api_key="sekrit", adapter_slots=1) as client:
        body = {"lora_name": name, "lora_path": str(path)}
        r = await client.post("/v1/load_lora_adapter", headers=KEY, json=body)
    assert r.status_code == status and message in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert engine.loaded_adapters == {}


async def test_slots_startup_adapters_and_a_server_without_slots(
    make_client: ClientFactory, base: Path, tmp_path: Path
) -> None:
    first, second = adapter(tmp_path, "one", base), adapter(tmp_path, "two", base)
    startup = adapter(tmp_path, "boot", base)
    async with make_client(FakeEngine(), model=str(base), api_key="sekrit", adapter_slots=1,
                           lora=[f"boot={startup}"]) as client:
        assert (await client.post("/v1/load_lora_adapter", headers=KEY,
                                  json={"lora_name": "one", "lora_path": str(first)})).status_code == 200
        full = await client.post("/v1/load_lora_adapter", headers=KEY,
                                 json={"lora_name": "two", "lora_path": str(second)})
        assert full.status_code == 400 and "adapter slots are in use" in full.json()["error"]["message"]
        models = (await client.get("/v1/models", headers=KEY)).json()["data"]
        assert [m["id"] for m in models] == ["fake-model", "boot", "one"]
        boot = await client.post("/v1/unload_lora_adapter", headers=KEY, json={"lora_name": "boot"})
        assert boot.status_code == 400 and "given with --lora at start" in boot.json()["error"]["message"]
    async with make_client(FakeEngine(), model=str(base)) as client:
        off = await client.post("/v1/load_lora_adapter", json={"lora_name": "one", "lora_path": str(first)})
        assert off.status_code == 400 and off.json()["error"]["code"] == "adapters_disabled"
