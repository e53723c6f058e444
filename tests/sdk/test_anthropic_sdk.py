"""Claude through both official SDKs: the OpenAI SDK against Anthropic deployments
(translation), and the Anthropic SDK against `/v1/messages` (fast path to Claude, translation
to an OpenAI-backed model)."""

import hashlib
import json
import pathlib

import anthropic
import openai
import pytest

from conftest import upstream_requests

# /work/shared/reference, found from /work/main or from a worktree under /work/wt/.
REFERENCE = next(
    (p / "shared" / "reference" for p in pathlib.Path(__file__).resolve().parents
     if (p / "shared" / "reference").is_dir()),
    pathlib.Path("/work/shared/reference"),
)
THINKING = "Let me think about this step by step."
REPLY = "Hello from the mock upstream."


def signature(text):
    return "mocksig_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def oai(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.master_key, max_retries=0)


def anth(gateway, key=None):
    return anthropic.Anthropic(base_url=gateway.url, api_key=key or gateway.master_key, max_retries=0)


def last_messages_request(upstream):
    return [r for r in upstream_requests(upstream) if r["path"] == "/v1/messages"][-1]


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
READ = {"type": "function", "function": {"name": "read", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}}}}}


# ---- OpenAI SDK -> Claude ---------------------------------------------------------------

def test_openai_sdk_system_prompt_and_consecutive_users(gateway, upstream):
    r = oai(gateway).chat.completions.create(
        model="claude-opus-4-6",
        max_completion_tokens=500,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    )
    assert r.choices[0].message.content == REPLY
    assert r.choices[0].finish_reason == "stop"
    sent = last_messages_request(upstream)
    assert sent["headers"]["x-api-key"] == "sk-upstream-anthropic"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    body = sent["body"]
    assert body["system"] == [{"type": "text", "text": "You are terse."}]
    assert body["max_tokens"] == 500
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert [b["text"] for b in body["messages"][0]["content"]] == ["first", "second"]


@pytest.mark.parametrize("choice,expected", [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_openai_sdk_tool_choice(gateway, upstream, choice, expected):
    oai(gateway).chat.completions.create(
        model="claude-opus-4-6", tools=[WEATHER], tool_choice=choice,
        messages=[{"role": "user", "content": "weather?"}],
    )
    body = last_messages_request(upstream)["body"]
    assert body["tool_choice"] == expected
    assert body["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}


def test_openai_sdk_tool_round_trip_keeps_ids(gateway, upstream):
    c = oai(gateway)
    messages = [{"role": "user", "content": "read the file"}]
    r = c.chat.completions.create(model="claude-tools", tools=[READ, WEATHER], messages=messages)
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    assert call.id == "toolu_mock_01" and call.function.name == "read"
    assert json.loads(call.function.arguments) == {"path": "tollgate-e2e.txt"}
    messages.append(r.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "x" * 300})
    r = c.chat.completions.create(model="claude-tools", tools=[READ, WEATHER], messages=messages)
    assert r.choices[0].message.content == "Tool said: " + "x" * 200
    body = last_messages_request(upstream)["body"]
    assert body["messages"][1]["content"][-1]["id"] == "toolu_mock_01"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_mock_01"


def test_openai_sdk_images_as_data_and_http_urls(gateway, upstream):
    oai(gateway).chat.completions.create(
        model="claude-opus-4-6",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ]}],
    )
    content = last_messages_request(upstream)["body"]["messages"][0]["content"]
    assert content[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
    assert content[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}


def test_openai_sdk_reasoning_effort_and_thinking_replay(gateway, upstream):
    c = oai(gateway)
    messages = [{"role": "user", "content": "weather in Paris?"}]
    r = c.chat.completions.create(model="claude-tools", reasoning_effort="medium", tools=[WEATHER], messages=messages)
    assert last_messages_request(upstream)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    msg = r.choices[0].message.model_dump(exclude_none=True)
    assert msg["reasoning_content"] == THINKING
    assert msg["thinking_blocks"] == [{"type": "thinking", "thinking": THINKING, "signature": signature(THINKING)}]
    messages.append(msg)
    messages.append({"role": "tool", "tool_call_id": msg["tool_calls"][0]["id"], "content": "sunny"})
    r = c.chat.completions.create(model="claude-tools", reasoning_effort="medium", tools=[WEATHER], messages=messages)
    assert r.choices[0].message.content == "Tool said: sunny"
    replayed = last_messages_request(upstream)["body"]["messages"][1]["content"]
    assert [b["type"] for b in replayed] == ["thinking", "tool_use"]


def test_openai_sdk_cache_control_and_cached_usage(gateway, upstream):
    r = oai(gateway).chat.completions.create(
        model="claude-opus-4-6",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "long prompt", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "hi"},
        ],
    )
    assert last_messages_request(upstream)["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    u = r.usage
    assert u.prompt_tokens_details.cached_tokens == 128
    assert u.model_extra["cache_read_input_tokens"] == 128
    assert u.model_extra["cache_creation_input_tokens"] == 16
    assert u.prompt_tokens > 128 + 16
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_openai_sdk_length_stop_reason(gateway):
    r = oai(gateway).chat.completions.create(
        model="claude-opus-4-6", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].finish_reason == "length"


def test_openai_sdk_streaming_with_usage(gateway):
    stream = oai(gateway).chat.completions.create(
        model="claude-thinking", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}],
    )
    text, reasoning, finish, usage = "", "", None, None
    for ch in stream:
        if ch.choices:
            d = ch.choices[0].delta
            text += d.content or ""
            reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            finish = ch.choices[0].finish_reason or finish
        if ch.usage:
            usage = ch.usage
    assert text == REPLY
    assert reasoning == THINKING
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 7 and usage.prompt_tokens > 0


def test_openai_sdk_streamed_tool_call(gateway):
    stream = oai(gateway).chat.completions.create(
        model="claude-tools", stream=True, tools=[WEATHER], messages=[{"role": "user", "content": "weather?"}])
    args, ids = "", set()
    for ch in stream:
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args += tc.function.arguments or ""
            if tc.id:
                ids.add(tc.id)
    assert ids == {"toolu_mock_01"}
    assert json.loads(args) == {"city": "Paris"}


def test_openai_sdk_midstream_error_is_an_error(gateway):
    stream = oai(gateway).chat.completions.create(
        model="claude-midstream", stream=True, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "Overloaded" in str(e.value)


def test_openai_sdk_overloaded_keeps_529(gateway):
    with pytest.raises(openai.APIStatusError) as e:
        oai(gateway).chat.completions.create(model="claude-overloaded", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 529


def test_openclaw_request_to_claude_streams_with_usage(gateway, upstream):
    body = json.loads((REFERENCE / "openclaw-sample-request.json").read_text())
    c = openai.OpenAI(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    chunks = list(c.chat.completions.create(**body))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 1000
    sent = last_messages_request(upstream)["body"]
    assert sent["max_tokens"] == 64000 and sent["stream"] is True
    assert sent["system"] == [{"type": "text", "text": body["messages"][0]["content"]}]
    assert len(sent["messages"]) == 1 and len(sent["messages"][0]["content"]) == 2
    assert [t["name"] for t in sent["tools"]] == [t["function"]["name"] for t in body["tools"]]


# ---- Anthropic SDK -> Claude (fast path) --------------------------------------------------

def test_anthropic_sdk_fast_path_with_thinking(gateway, upstream):
    m = anth(gateway).messages.create(
        model="claude-thinking", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert m.content[0].type == "thinking"
    assert m.content[0].thinking == THINKING and m.content[0].signature == signature(THINKING)
    assert m.content[1].text == REPLY
    assert m.stop_reason == "end_turn"
    sent = last_messages_request(upstream)
    assert sent["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent["headers"]["x-api-key"] == "sk-upstream-anthropic"


def test_anthropic_sdk_fast_path_stream_and_tool_replay(gateway):
    c = anth(gateway)
    messages = [{"role": "user", "content": "weather?"}]
    kw = dict(model="claude-tools", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
              tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    with c.messages.stream(messages=messages, **kw) as s:
        m = s.get_final_message()
    assert [b.type for b in m.content] == ["thinking", "tool_use"]
    assert m.content[0].signature == signature(THINKING)
    assert m.content[1].input == {"city": "Paris"}
    assert m.stop_reason == "tool_use"
    assert m.usage.output_tokens == 12 and m.usage.input_tokens > 0
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.content[1].id, "content": "sunny"}]})
    m = c.messages.create(messages=messages, **kw)
    assert m.content[-1].text == "Tool said: sunny"


def test_anthropic_sdk_bad_key_fails_at_once(gateway):
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong").messages.create(
            model="claude-opus-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["x-should-retry"] == "false"
    assert e.value.body["error"]["type"] == "authentication_error"


def test_claude_code_request_passes_untouched(gateway, upstream):
    body = json.loads((REFERENCE / "claude-code-sample-request.json").read_text())
    body["model"] = "claude-opus-4-6"
    body["thinking"] = {"type": "adaptive"}
    body["output_config"] = {"effort": "high"}
    body["messages"].append({"role": "system", "output_config": {"effort": "medium"},
                             "content": [{"type": "text", "text": "# Environment"}]})
    c = anth(gateway)
    typed = {"model", "messages", "max_tokens", "system", "tools", "metadata", "thinking"}
    with c.messages.stream(**{k: v for k, v in body.items() if k in typed},
                           extra_body={k: v for k, v in body.items() if k not in typed | {"stream"}},
                           extra_headers={"anthropic-beta": "claude-code-20250219,effort-2025-11-24"}) as s:
        m = s.get_final_message()
    assert m.content[0].signature == signature(THINKING)
    assert m.content[-1].text == REPLY
    sent = last_messages_request(upstream)
    assert sent["body"] == body
    assert sent["headers"]["anthropic-beta"] == "claude-code-20250219,effort-2025-11-24"


# ---- Anthropic SDK -> an OpenAI-backed model ---------------------------------------------

def test_anthropic_sdk_to_gpt4o(gateway, upstream):
    m = anth(gateway).messages.create(
        model="gpt-4o", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == REPLY
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 7
    sent = [r for r in upstream_requests(upstream) if r["path"] == "/chat/completions"][-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_anthropic_sdk_to_gpt4o_stream(gateway):
    with anth(gateway).messages.stream(
            model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        m = s.get_final_message()
    assert text == REPLY
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 7


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_to_gpt4o_tools(gateway, stream):
    c = anth(gateway)
    kw = dict(model="gpt-4o-tools", max_tokens=100,
              tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
              messages=[{"role": "user", "content": "weather?"}])
    if stream:
        with c.messages.stream(**kw) as s:
            m = s.get_final_message()
    else:
        m = c.messages.create(**kw)
    tool = [b for b in m.content if b.type == "tool_use"][0]
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"} and tool.id == "call_mock1"
    assert m.stop_reason == "tool_use"
