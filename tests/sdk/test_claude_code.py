"""The real Claude Code CLI against Tollgate's /v1/messages: the fast path to Claude (text and
a two-turn tool conversation that replays signed thinking) and translation to gpt-4o.

Needs the CLI's native binary: `npm install --ignore-scripts @anthropic-ai/claude-code-linux-x64`
and `CLAUDE_CODE_BIN=.../node_modules/@anthropic-ai/claude-code-linux-x64/claude`. Skipped
without it.
"""

import json
import os
import subprocess
import tempfile

import pytest

from conftest import upstream_requests

BIN = os.environ.get("CLAUDE_CODE_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="CLAUDE_CODE_BIN not set")


def run_claude(gateway, model, prompt, *extra):
    home = tempfile.mkdtemp(prefix="tollgate-cc-")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": gateway.master_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    p = subprocess.run(
        [BIN, "-p", prompt, "--model", model, "--output-format", "stream-json", "--verbose",
         "--include-partial-messages", *extra],
        env=env, cwd=home, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    result = next(l for l in lines if l.get("type") == "result")
    return p.returncode, result


def count(upstream):
    return len(upstream_requests(upstream))


@pytest.mark.parametrize("model,path", [("claude-opus-4-6", "/v1/messages"), ("gpt-4o", "/chat/completions")])
def test_one_turn(gateway, upstream, model, path):
    before = count(upstream)
    code, result = run_claude(gateway, model, "say hello")
    assert code == 0 and not result["is_error"], result
    assert result["result"] == "Hello from the mock upstream."
    assert result["usage"]["output_tokens"] == 7 and result["usage"]["input_tokens"] > 1000
    seen = upstream_requests(upstream)[before:]
    assert [r["path"] for r in seen] == [path], "one request, no degraded retries"


def test_tool_turn_replays_signed_thinking(gateway, upstream):
    code, result = run_claude(gateway, "claude-tools", "use a tool", "--allowedTools", "Read")
    assert code == 0 and not result["is_error"], result
    assert result["num_turns"] == 2
    assert result["result"].startswith("Tool said: ")
    second = upstream_requests(upstream)[-1]["body"]
    assistant = [m for m in second["messages"] if m["role"] == "assistant"][-1]
    assert [b["type"] for b in assistant["content"]][:1] == ["thinking"]
