"""Fixtures for the real-client suite: a mock upstream and a Tollgate gateway in front of it.

Both are the real binary (`tollgate mock-upstream` and `tollgate --config ...`), started on
ephemeral loopback ports for the whole session and stopped at the end.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-test-master-key"


def binary() -> str:
    path = os.environ.get("TOLLGATE_BIN") or str(ROOT / "target" / "debug" / "tollgate")
    if not os.path.exists(path):
        raise RuntimeError(f"tollgate binary not found at {path}: run `cargo build` first")
    return path


class Process:
    """A child process that prints `... listening on http://HOST:PORT` on stdout."""

    def __init__(self, args, env=None, pattern=r"listening on (http://\S+)"):
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            text=True,
        )
        deadline = time.time() + 30
        self.url = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited: {self.proc.stderr.read()}")
                continue
            m = re.search(pattern, line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            self.proc.kill()
            raise RuntimeError(f"{args} did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


def gateway_config(upstream: str) -> str:
    return f"""
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
  - model_name: gpt-4o-tools
    litellm_params:
      model: openai/gpt-4o-tool
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
  - model_name: claude-opus-4-6
    litellm_params:
      model: anthropic/claude-opus-4-6
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-tools
    litellm_params:
      model: anthropic/claude-tool-model
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-thinking
    litellm_params:
      model: anthropic/claude-thinking-model
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-midstream
    litellm_params:
      model: anthropic/claude-midstream-error
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-overloaded
    litellm_params:
      model: anthropic/claude-fail-529
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: broken
    litellm_params:
      model: openai/fail-500
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
general_settings:
  master_key: {MASTER_KEY}
router_settings:
  num_retries: 0
"""


@pytest.fixture(scope="session")
def upstream():
    p = Process([binary(), "mock-upstream", "--port", "0"])
    yield p
    p.stop()


@pytest.fixture(scope="session")
def gateway(upstream):
    d = tempfile.mkdtemp(prefix="tollgate-sdk-")
    cfg = pathlib.Path(d) / "config.yaml"
    cfg.write_text(gateway_config(upstream.url))
    p = Process(
        [binary(), "--config", str(cfg), "--host", "127.0.0.1", "--port", "0"],
        env={"TOLLGATE_LOG": "warn"},
    )
    p.master_key = MASTER_KEY
    yield p
    assert p.stop() == 0, "gateway did not exit cleanly on SIGTERM"


def upstream_requests(upstream):
    """What the mock upstream received, oldest first."""
    with urllib.request.urlopen(upstream.url + "/__requests") as r:
        return json.load(r)
