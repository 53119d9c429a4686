"""The upstream engine against fake vLLM servers on loopback: streaming, aborts, probe, balancing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from server.engines import CandidateUpdate, EngineError, OutputConstraint, SamplingSpec
from server.engines.pool import UpstreamPool, affinity_key
from server.engines.upstream import (
    ProcessedLogprobs,
    Upstream,
    completion_body,
    parse_prompt_logprobs,
    queued_and_running,
)
from tests.conftest import serve_app
from tests.fake_upstream import EOS, FakeUpstream

StartFake = Callable[..., tuple[FakeUpstream, str]]


@pytest.fixture
def fakes() -> Iterator[StartFake]:
    """Start fake upstreams on loopback: `fake, url = fakes(step_seconds=...)`."""
    with ExitStack() as stack:

        def start(**options: object) -> tuple[FakeUpstream, str]:
            fake = FakeUpstream(**options)  # type: ignore[arg-type]
            return fake, stack.enter_context(serve_app(fake))

        yield start


async def collect(stream: AsyncIterator[CandidateUpdate]) -> list[CandidateUpdate]:
    return [update async for update in stream]


async def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_completion_body_carries_the_sampling_of_the_candidate() -> None:
    spec = SamplingSpec(max_tokens=9, temperature=0.7, top_p=0.9, seed=4, stop=("\n",), top_logprobs=2)
    body = completion_body("m", [1, 2], spec)
    assert body["prompt"] == [1, 2] and body["stream"] and body["return_token_ids"]
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (0.7, 0.9, 4, ["\n"])
    assert body["logprobs"] == 2 and body["max_tokens"] == 9
    assert "top_k" not in body  # 0 means no top-k: vLLM's default, not sent
    defaults = {"structured_outputs", "logit_bias", "min_tokens", "ignore_eos", "skip_special_tokens"}
    assert not defaults & set(body)


def test_completion_body_carries_constraints_biases_and_penalties() -> None:
    schema = {"type": "object"}
    spec = SamplingSpec(
        max_tokens=9, constraint=OutputConstraint("json", schema), logit_bias={7: -100.0}, min_tokens=2,
        repetition_penalty=1.2, stop_token_ids=(3,), ignore_eos=True, skip_special_tokens=False,
    )
    body = completion_body("m", [1], spec)
    assert body["structured_outputs"] == {"json": schema} and body["logit_bias"] == {"7": -100.0}
    assert (body["min_tokens"], body["repetition_penalty"], body["stop_token_ids"]) == (2, 1.2, [3])
    assert body["ignore_eos"] is True and body["skip_special_tokens"] is False
    json_object = SamplingSpec(max_tokens=9, constraint=OutputConstraint("json_object"))
    assert completion_body("m", [1], json_object)["structured_outputs"] == {"json_object": True}


def test_prompt_logprobs_are_read_in_rank_order_and_checked() -> None:
    step = {"5": {"logprob": -2.0, "rank": 3, "decoded_token": "b"},
            "8": {"logprob": -0.5, "rank": 1, "decoded_token": "c"},
            "9": {"logprob": -1.0, "rank": 2, "decoded_token": "d"}}
    tokens = parse_prompt_logprobs({"prompt_logprobs": [None, step]}, [4, 5], top=2)
    assert tokens[0] is None and tokens[1] is not None
    assert (tokens[1].token, tokens[1].logprob, tokens[1].top) == ("b", -2.0, (("c", -0.5), ("d", -1.0)))
    with pytest.raises(EngineError, match="scored 1 of 2"):
        parse_prompt_logprobs({"prompt_logprobs": [None]}, [4, 5], top=0)
    with pytest.raises(EngineError, match="lack a prompt token"):
        parse_prompt_logprobs({"prompt_logprobs": [None, step]}, [4, 6], top=0)


async def test_stream_parses_tokens_logprobs_and_the_finish(fakes: StartFake) -> None:
    fake, url = fakes()
    async with httpx.AsyncClient() as http:
        upstream = Upstream(url, http)
        assert (await upstream.describe()).name == "fake-model"
        updates = await collect(upstream.stream_candidate([1, 5], SamplingSpec(16, seed=2), lambda: False))
    # seed 2: 3 + 4 * 2 = 11 tokens, the last one EOS; raw logprob -0.1 * (1 + (2 + p) % 7)
    tokens = [t for u in updates for t in u.token_ids]
    logprobs = [v for u in updates for v in u.logprobs]
    assert tokens == [20 + (14 + p) % 50 for p in range(10)] + [EOS]
    assert logprobs == pytest.approx([-0.1 * (1 + (2 + p) % 7) for p in range(11)])
    assert [u.finished for u in updates] == [False] * 10 + [True]
    assert updates[-1].finish_reason == "stop"
    assert "".join(u.text for u in updates) == "".join(f"t{t} " for t in tokens[:-1])
    assert fake.bodies[0]["seed"] == 2 and fake.bodies[0]["prompt"] == [1, 5]


async def test_probe_accepts_raw_and_refuses_processed_logprobs(
    fakes: StartFake,
) -> None:
    _, raw_url = fakes()
    _, processed_url = fakes(processed=True)
    async with httpx.AsyncClient() as http:
        raw, processed = Upstream(raw_url, http), Upstream(processed_url, http)
        for upstream in (raw, processed):
            await upstream.describe()
        await raw.check_raw_logprobs()
        with pytest.raises(ProcessedLogprobs, match="logprobs-mode raw_logprobs"):
            await processed.check_raw_logprobs()


async def test_pool_refuses_to_start_on_processed_logprobs(fakes: StartFake) -> None:
    _, url = fakes(processed=True)
    pool = UpstreamPool([url])
    with pytest.raises(ProcessedLogprobs):
        await pool.start()
    await pool.shutdown()


async def test_abort_closes_the_stream_and_the_upstream_stops(
    fakes: StartFake,
) -> None:
    fake, url = fakes(step_seconds=0.01)
    pool = UpstreamPool([url])
    await pool.start()
    try:
        greedy = SamplingSpec(max_tokens=500, temperature=0.0)
        updates = []
        async for update in pool.stream_candidate([1], greedy, "req-0"):
            updates.append(update)
            if len(updates) == 3:
                await pool.abort(["req-0"])
        assert updates[-1].finish_reason == "abort" and updates[-1].finished
        assert len(updates) == 4  # three tokens, then the abort: no more tokens were read
        await eventually(lambda: fake.disconnected == 1 and fake.running == 0)
    finally:
        await pool.shutdown()


async def test_a_cancelled_candidate_disconnects_upstream(fakes: StartFake) -> None:
    fake, url = fakes(step_seconds=0.01)
    pool = UpstreamPool([url])
    await pool.start()
    try:
        stream = pool.stream_candidate([1], SamplingSpec(500, temperature=0), "r-0")
        task = asyncio.create_task(collect(stream))
        await eventually(lambda: fake.running == 1)
        task.cancel()
        await eventually(lambda: fake.disconnected == 1 and fake.running == 0)
        assert pool.upstream_status()[0].inflight_candidates == 0
    finally:
        await pool.shutdown()


async def test_requests_balance_and_candidates_stay_together(
    fakes: StartFake,
) -> None:
    (a, url_a), (b, url_b) = fakes(step_seconds=0.01), fakes(step_seconds=0.01)
    pool = UpstreamPool([url_a, url_b])
    await pool.start()
    probes = len(a.bodies), len(b.bodies)
    try:
        spec = SamplingSpec(max_tokens=20, temperature=0.0)
        streams = [pool.stream_candidate([1], spec, f"req{r}-{i}") for r in range(2) for i in range(3)]
        await asyncio.gather(*(collect(s) for s in streams))
        served = len(a.bodies) - probes[0], len(b.bodies) - probes[1]
        assert sorted(served) == [3, 3]  # one request per upstream, its three candidates together
        assert affinity_key("chatcmpl-abc-7") == "chatcmpl-abc"
    finally:
        await pool.shutdown()


async def test_an_unreachable_upstream_is_skipped_and_candidates_retry_elsewhere(
    fakes: StartFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fakes()
    dead = fakes()
    pool = UpstreamPool([url, dead[1]], health_seconds=0.05)
    await pool.start()
    try:
        dead[0].healthy = False  # its /health fails: the watcher takes it out
        await eventually(lambda: not pool.upstream_status()[1].healthy)
        dead[0].healthy = True
        monkeypatch.setattr("server.engines.pool.FIRST_BACKOFF_SECONDS", 0.05)
        await eventually(lambda: pool.upstream_status()[1].healthy)  # probed again, back in
        dead[0].break_after = 0  # now it drops connections before the first token
        before = len(fake.bodies)
        pool.members[0].inflight = 100  # make the dying upstream the least loaded
        updates = await collect(pool.stream_candidate([1], SamplingSpec(10, seed=1), "q-0"))
        pool.members[0].inflight = 0
        assert updates[-1].finish_reason == "stop"  # served by the healthy one
        assert len(fake.bodies) == before + 1
        status = pool.upstream_status()[1]
        assert not status.healthy and status.failures == 2
    finally:
        await pool.shutdown()


async def test_a_stream_dropped_before_any_token_is_sent_again_once(fakes: StartFake) -> None:
    fake, url = fakes()
    pool = UpstreamPool([url])
    await pool.start()
    try:
        fake.drops, before = 1, len(fake.bodies)  # e.g. a kept-alive connection the upstream had closed
        updates = await collect(pool.stream_candidate([1], SamplingSpec(10, seed=1), "d-0"))
        assert updates[-1].finish_reason == "stop" and len(fake.bodies) == before + 2
        assert pool.upstream_status()[0].healthy  # one dropped stream does not take it out
        fake.drops = 2  # dropped again on the second try: the upstream is taken out
        with pytest.raises(EngineError):
            await collect(pool.stream_candidate([1], SamplingSpec(10, seed=1), "d-1"))
        assert not pool.upstream_status()[0].healthy
    finally:
        await pool.shutdown()


async def test_a_mid_stream_death_is_an_engine_error(fakes: StartFake) -> None:
    fake, url = fakes()
    pool = UpstreamPool([url])
    await pool.start()
    fake.break_after = 2
    try:
        with pytest.raises(EngineError):
            await collect(pool.stream_candidate([1], SamplingSpec(10, temperature=0), "x-0"))
    finally:
        await pool.shutdown()


async def test_no_reachable_upstream_fails_the_start() -> None:
    pool = UpstreamPool(["http://127.0.0.1:9"])
    with pytest.raises(EngineError, match="no upstream could be reached"):
        await pool.start()
    await pool.shutdown()


async def test_a_stream_interval_groups_tokens_per_event(fakes: StartFake) -> None:
    fake, url = fakes()
    pool = UpstreamPool([url], stream_interval=4)
    await pool.start()
    try:
        updates = await collect(pool.stream_candidate([1], SamplingSpec(10, temperature=0), "s-0"))
    finally:
        await pool.shutdown()
    assert [len(u.token_ids) for u in updates] == [4, 4, 2]
    assert [t for u in updates for t in u.token_ids] == list(range(10, 20))
    assert fake.bodies[-1]["stream_interval"] == 4


def test_vllm_load_gauges_are_read_from_its_metrics() -> None:
    text = (
        '# HELP x\nvllm:num_requests_running{engine="0"} 3.0\nvllm:num_requests_waiting{engine="0"} 5.0\n'
    )
    assert queued_and_running(text) == 8
    assert queued_and_running("vllm:num_requests_running 2.0\nvllm:num_requests_running_x 9\n") == 2
    assert queued_and_running("process_cpu_seconds_total 4.0\n") is None  # not a vLLM server


async def test_the_pool_hears_what_other_clients_queue_on_its_upstreams(fakes: StartFake) -> None:
    fake, url = fakes()
    fake.waiting = 12
    pool = UpstreamPool([url], health_seconds=0.05)
    await pool.start()
    try:
        await eventually(lambda: pool.busy_sequences() == 12)
    finally:
        await pool.shutdown()
