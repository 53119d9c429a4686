"""The vLLM engine module without an engine: CPU defaults, parameter conversion, tool parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm.engine.arg_utils import AsyncEngineArgs

from server.engines import OutputConstraint, ParsedToolCalls, SamplingSpec
from server.engines.tokenizer import Tokenizer
from server.engines.vllm import (
    CPU_BLOCK_TOKENS,
    EngineOptions,
    VllmEngine,
    for_cpu,
    to_vllm,
    tool_parser_class,
    use_every_core,
)


def test_small_kv_blocks_unless_the_user_chose_a_block_size(tmp_path: Path) -> None:
    # a local directory: with HF_HUB_OFFLINE set, vLLM resolves any other model name in the hub cache
    args = AsyncEngineArgs(model=str(tmp_path), enable_chunked_prefill=True)
    keeps_chunking = {"enable_chunked_prefill"}
    assert for_cpu(args, keeps_chunking).block_size == CPU_BLOCK_TOKENS
    assert for_cpu(args, keeps_chunking | {"block_size"}) == args


@pytest.mark.parametrize(
    ("cpus", "workers", "expected"),
    [({0, 1}, 1, True), ({0, 1, 2, 3}, 1, True), ({0, 1}, 2, False), (set(range(8)), 1, False)],
)
def test_every_core_computes_on_small_single_worker_machines(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], workers: int, expected: bool
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: cpus)
    assert use_every_core(workers) is expected


def test_sampling_fields_and_constraints_become_vllm_params() -> None:
    from vllm.sampling_params import StructuredOutputsParams

    spec = SamplingSpec(
        max_tokens=9,
        constraint=OutputConstraint("regex", r"\d+"),
        logit_bias={5: 2.0},
        min_tokens=2,
        repetition_penalty=1.2,
        stop_token_ids=(7,),
        ignore_eos=True,
    )
    params = to_vllm(spec)
    assert params.structured_outputs == StructuredOutputsParams(regex=r"\d+")
    assert (params.logit_bias, params.min_tokens, params.repetition_penalty) == ({5: 2.0}, 2, 1.2)
    assert (params.stop_token_ids, params.ignore_eos, params.logprobs) == ([7], True, 0)
    assert to_vllm(SamplingSpec(max_tokens=1)).structured_outputs is None
    any_object = to_vllm(SamplingSpec(max_tokens=1, constraint=OutputConstraint("json_object")))
    assert any_object.structured_outputs == StructuredOutputsParams(json_object=True)


def test_an_unknown_tool_parser_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="hermes"):
        tool_parser_class("no-such-parser")


def test_the_hermes_parser_finds_calls_in_text() -> None:
    from transformers import AutoTokenizer

    from server.embedded import prepare_embedded_model

    engine = VllmEngine(EngineOptions(model="unused", served_model_name="m", tool_call_parser="hermes"))
    engine._tokenizer = Tokenizer(AutoTokenizer.from_pretrained(prepare_embedded_model()))
    engine._tool_parser = tool_parser_class("hermes")
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    text = 'Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    assert engine.parse_tool_calls(text, [tool]) == ParsedToolCalls(
        "Let me check. ", [("get_weather", '{"city": "Oslo"}')]
    )
    assert engine.parse_tool_calls("Just text.", [tool]) == ParsedToolCalls("Just text.", [])
