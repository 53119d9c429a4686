"""A fake vLLM OpenAI server (raw ASGI, no model) for upstream-mode tests and the frontend benchmark.

It answers /health, /v1/models, /tokenize, /detokenize, streaming /v1/completions the way vLLM
does (token ids, OpenAI logprobs, a usage chunk, [DONE]) and prompt scoring (`prompt_logprobs`, not
streamed). Its toy model is deterministic:

- greedy draws (temperature 0 or top_k 1) give tokens 10, 11, ... with raw log-probability
  -0.25 * (1 + position % 3);
- sampled draws with seed s give token 20 + (7 s + position) % 50 with raw log-probability
  -0.1 * (1 + (s + position) % 7), and stop with EOS (2) after 3 + 4 * (s % 5) tokens;
- prompt token p (from the second on) has raw log-probability -0.5 * p, ranked below token 99
  at -0.01.

With `processed=True` it returns log-probabilities after temperature and top-k, as vLLM does with
`--logprobs-mode processed_logprobs`. It counts running, finished and disconnected streams, and it
can die mid-stream.

    python -m tests.fake_upstream --port 8001 [--model NAME] [--step-seconds 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

EOS = 2
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class FakeUpstream:
    """The ASGI app and what it has seen."""

    model: str = "fake-model"
    max_model_len: int = 2048
    processed: bool = False
    step_seconds: float = 0.0
    healthy: bool = True
    break_after: int | None = None  # drop the connection after this many chunks (a dying server)
    drops: int = 0  # drop this many coming streams before their first chunk (stale connections)
    running: int = 0
    waiting: int = 0  # requests other clients have queued (reported on /metrics)
    finished: int = 0
    disconnected: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await read_body(receive)
        path = scope["path"]
        if path == "/health":
            await respond(send, 200 if self.healthy else 503, {})
        elif path == "/metrics":
            await respond_text(send, metrics_text(self.running, self.waiting))
        elif path == "/v1/models":
            card = {"id": self.model, "object": "model", "max_model_len": self.max_model_len}
            await respond(send, 200, {"object": "list", "data": [card]})
        elif path == "/tokenize":
            await respond(send, 200, {"tokens": tokenize(json.loads(body))})
        elif path == "/detokenize":
            await respond(send, 200, {"prompt": "".join(f"<{t}>" for t in json.loads(body)["tokens"])})
        elif path == "/v1/completions":
            request = json.loads(body)
            self.bodies.append(request)
            if request.get("prompt_logprobs") is not None:
                await respond(send, 200, prompt_scores(request["prompt"], request["prompt_logprobs"]))
            else:
                await self.complete(request, receive, send)
        else:
            await respond(send, 404, {"error": {"message": f"no route {path}"}})

    async def complete(self, request: dict[str, Any], receive: Receive, send: Send) -> None:
        """Stream one completion; stop when the client disconnects."""
        if len(request["prompt"]) + request["max_tokens"] > self.max_model_len:
            await respond(send, 400, {"error": {"message": "context length exceeded"}})
            return
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self.running += 1
        try:
            if self.drops:
                self.drops -= 1
                raise ConnectionAbortedError("the fake upstream dropped a stream")
            for sent, chunk in enumerate(self.chunks(request)):
                if self.break_after is not None and sent >= self.break_after:
                    raise ConnectionAbortedError("the fake upstream died mid-stream")
                if self.step_seconds:
                    await asyncio.sleep(self.step_seconds)
                if gone.is_set():
                    self.disconnected += 1
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
            self.finished += 1
        finally:
            self.running -= 1
            listener.cancel()

    def chunks(self, request: dict[str, Any]) -> list[bytes]:
        """The server-sent events of one completion."""
        temperature, top_k = request.get("temperature", 1.0), request.get("top_k", 0)
        greedy = temperature == 0 or top_k == 1
        seed = int(request.get("seed") or 0)
        length = request["max_tokens"] if greedy else min(3 + 4 * (seed % 5), request["max_tokens"])
        steps = []
        for position in range(length):
            if greedy:
                token, raw = 10 + position, -0.25 * (1 + position % 3)
            else:
                token, raw = 20 + (7 * seed + position) % 50, -0.1 * (1 + (seed + position) % 7)
            stops = not greedy and position == length - 1 and length < request["max_tokens"]
            token = EOS if stops else token
            value = self.reported(raw, temperature, top_k)
            text = "" if stops else f"t{token} "
            finish = "stop" if stops else "length" if position == length - 1 else None
            steps.append((token, text, value, finish))
        interval = int(request.get("stream_interval") or 1)  # tokens per event, as vLLM groups them
        events = []
        for start in range(0, length, interval):
            group = steps[start : start + interval]
            texts = [text for _, text, _, _ in group]
            choice = {
                "index": 0,
                "text": "".join(texts),
                "logprobs": {
                    "tokens": texts,
                    "token_logprobs": [value for _, _, value, _ in group],
                    "top_logprobs": [{text: value} for _, text, value, _ in group],
                },
                "finish_reason": group[-1][3],
                "token_ids": [token for token, _, _, _ in group],
            }
            events.append({"id": "cmpl-fake", "object": "text_completion", "choices": [choice]})
        usage = {"prompt_tokens": len(request["prompt"]), "completion_tokens": length}
        events.append({"id": "cmpl-fake", "object": "text_completion", "choices": [], "usage": usage})
        return [f"data: {json.dumps(e)}\n\n".encode() for e in events]

    def reported(self, raw: float, temperature: float, top_k: int) -> float:
        """The log-probability the server reports: raw, or after temperature and top-k when processed."""
        if not self.processed:
            return raw
        if top_k == 1:
            return 0.0
        return raw / temperature if temperature else raw


def tokenize(body: dict[str, Any]) -> list[int]:
    """Toy token ids: a chat is BOS, one id per message, and an assistant header; text is one id per char."""
    if "messages" in body:
        return [1] + [100 + len(str(m.get("content", ""))) % 50 for m in body["messages"]] + [3]
    return [1] + [100 + ord(ch) % 50 for ch in body["prompt"]]


def prompt_scores(prompt: list[int], top: int) -> dict[str, Any]:
    """A completion whose choice carries vLLM's prompt_logprobs: the prompt token, plus the top ones."""
    steps: list[dict[str, Any] | None] = [None]
    for token in prompt[1:]:
        step = {str(token): {"logprob": -0.5 * token, "rank": 2, "decoded_token": f"<{token}>"}}
        if top:
            step["99"] = {"logprob": -0.01, "rank": 1, "decoded_token": "<99>"}
        steps.append(step)
    choice = {"index": 0, "text": "t10 ", "finish_reason": "length", "prompt_logprobs": steps}
    return {"id": "cmpl-fake", "object": "text_completion", "choices": [choice]}


async def read_body(receive: Receive) -> bytes:
    """The whole body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    """A JSON response."""
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def respond_text(send: Send, text: str) -> None:
    """A plain-text 200 response."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text.encode()})


def metrics_text(running: int, waiting: int) -> str:
    """The two load gauges of vLLM's Prometheus exposition."""
    return (
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{engine="0",model_name="fake-model"}} {float(running)}\n'
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{engine="0",model_name="fake-model"}} {float(waiting)}\n'
    )


def main() -> None:
    """Serve the fake upstream on a port (for end-to-end tests and the frontend benchmark)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tests.fake_upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--step-seconds", type=float, default=0.0)
    args = parser.parse_args()
    app = FakeUpstream(args.model, args.max_model_len, step_seconds=args.step_seconds)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
