"""/tokenize, /detokenize and /v1/models/{id} on the fake engine."""

from __future__ import annotations

from tests.conftest import ClientFactory

HELLO = [{"role": "user", "content": "hello"}]


async def test_tokenize_a_prompt_with_and_without_special_tokens(make_client: ClientFactory) -> None:
    async with make_client() as client:
        plain = (await client.post("/tokenize", json={"prompt": "ab"})).json()
        bare = (await client.post("/tokenize", json={"prompt": "ab", "add_special_tokens": False})).json()
        strs = (await client.post("/tokenize", json={"prompt": "a", "return_token_strs": True})).json()
    assert plain == {"count": 3, "max_model_len": 512, "tokens": [1, 147, 148], "token_strs": None}
    assert bare["tokens"] == [147, 148]
    assert strs["token_strs"] == ["<1>", "<147>"]


async def test_tokenize_messages_with_and_without_the_generation_prompt(make_client: ClientFactory) -> None:
    async with make_client() as client:
        ready = (await client.post("/tokenize", json={"messages": HELLO})).json()
        body = {"messages": HELLO, "add_generation_prompt": False}
        open_ended = (await client.post("/tokenize", json=body)).json()
    assert ready["tokens"] == [1, 105] and open_ended["tokens"] == [1]


async def test_detokenize_is_tokenize_backwards(make_client: ClientFactory) -> None:
    async with make_client() as client:
        r = await client.post("/detokenize", json={"tokens": [1, 5]})
    assert r.json() == {"prompt": "<1><5>"}


async def test_tokenizer_mistakes_are_400s_naming_the_field(make_client: ClientFactory) -> None:
    async with make_client() as client:
        cases = {
            "prompt": {},
            "messages": {"messages": [{"role": "wizard", "content": "x"}]},
            "chat_template": {"messages": HELLO, "chat_template": "{{ x }}"},
            "add_special_tokens": {"messages": HELLO, "add_special_tokens": True},
            "tokens": None,
        }
        for param, body in cases.items():
            if body is None:
                r = await client.post("/detokenize", json={"tokens": [-1]})
            else:
                r = await client.post("/tokenize", json=body)
            assert r.status_code == 400, (param, r.text)
            assert r.json()["error"]["param"].startswith(param)


async def test_models_by_id(make_client: ClientFactory) -> None:
    async with make_client() as client:
        known = await client.get("/v1/models/fake-model")
        unknown = await client.get("/v1/models/org/other-model")
    assert known.json()["id"] == "fake-model" and known.json()["object"] == "model"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


async def test_tokenize_needs_the_api_key_when_one_is_set(make_client: ClientFactory) -> None:
    async with make_client(api_key="k") as client:
        denied = await client.post("/tokenize", json={"prompt": "a"})
        allowed = await client.post("/tokenize", json={"prompt": "a"}, headers={"Authorization": "Bearer k"})
    assert denied.status_code == 401 and allowed.status_code == 200
