"""The official OpenAI Python SDK against Tollgate, streaming and not."""

import json
import pathlib

import openai
import pytest

from conftest import upstream_requests

def _reference_dir() -> pathlib.Path:
    # shared/ sits beside the checkout (CI lays a copy there); walk up to find it.
    for parent in pathlib.Path(__file__).resolve().parents:
        candidate = parent / "shared" / "reference"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("shared/reference not found beside the checkout")


REFERENCE = _reference_dir()


def client(gateway, key=None):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key or gateway.master_key, max_retries=0)


def test_chat_completion(gateway):
    r = client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert r.choices[0].message.content == "Hello from the mock upstream."
    assert r.usage.total_tokens > 0


def test_chat_completion_at_root_path_like_openclaw(gateway):
    c = openai.OpenAI(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].finish_reason == "stop"


def test_streaming_with_usage(gateway):
    stream = client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "Hello from the mock upstream."
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 7


def test_streamed_tool_call_arguments_reassemble(gateway):
    stream = client(gateway).chat.completions.create(
        model="gpt-4o-tools",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        stream=True,
    )
    args, name = "", None
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = tc.function.name or name
            args += tc.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Paris"}


def test_wrong_key_is_401_in_openai_shape(gateway):
    with pytest.raises(openai.AuthenticationError) as e:
        client(gateway, key="sk-wrong").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert e.value.status_code == 401
    assert e.value.body["code"] == "401"


def test_unknown_model_is_400_naming_models(gateway):
    with pytest.raises(openai.BadRequestError) as e:
        client(gateway).chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert "gpt-4o" in e.value.message


def test_upstream_failure_keeps_status(gateway):
    with pytest.raises(openai.InternalServerError) as e:
        client(gateway).chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 500


def test_models_and_embeddings(gateway):
    c = client(gateway)
    ids = {m.id for m in c.models.list()}
    assert {"gpt-4o", "claude-opus-4-6"} <= ids
    e = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(e.data) == 2


def test_legacy_completions_streaming_and_not(gateway):
    c = client(gateway)
    r = c.completions.create(model="gpt-4o", prompt="Once upon a time", max_tokens=5)
    assert r.object == "text_completion"
    assert r.choices[0].text == " and so on."
    assert r.usage.completion_tokens == 3
    stream = c.completions.create(
        model="gpt-4o", prompt="Once", stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].text
        if chunk.usage:
            usage = chunk.usage
    assert text == " and so on."
    assert usage is not None and usage.completion_tokens == 3


def test_moderations_and_images(gateway):
    c = client(gateway)
    m = c.moderations.create(model="gpt-4o", input=["hello", "world"])
    assert len(m.results) == 2 and not m.results[0].flagged
    img = c.images.generate(model="gpt-4o", prompt="a cat", n=2, size="256x256")
    assert len(img.data) == 2 and img.data[0].url.startswith("https://")


def test_openclaw_request_arrives_intact_and_streams_back(gateway, upstream):
    """The real request OpenClaw sent (50K-char system prompt, 14 tools, two user turns)."""
    body = json.loads((REFERENCE / "openclaw-sample-request.json").read_text())
    body["model"] = "gpt-4o"
    c = openai.OpenAI(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    stream = c.chat.completions.create(**body)
    chunks = list(stream)
    assert chunks[-1].usage is not None, "usage chunk requested by stream_options"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello from the mock upstream."
    sent = [r for r in upstream_requests(upstream) if r["path"] == "/chat/completions"][-1]["body"]
    expected = dict(body)
    assert sent == expected, "the upstream must receive the same content"
