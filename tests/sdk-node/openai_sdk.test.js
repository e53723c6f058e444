// The official OpenAI Node SDK against Tollgate: non-streaming, streaming (with usage and a
// streamed tool call) and error cases. Like tests/sdk/conftest.py, it starts the real binary
// twice on ephemeral loopback ports — `tollgate mock-upstream` and a gateway in front of it —
// and stops both at the end. scripts/test installs the SDK into a cache folder and points
// NODE_PATH at it; TOLLGATE_BIN names the binary (default target/debug/tollgate).

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const OpenAI = require("openai");

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = process.env.TOLLGATE_BIN || path.join(ROOT, "target", "debug", "tollgate");
const MASTER_KEY = "sk-test-master-key";

/** Starts a child that prints `... listening on http://HOST:PORT`; resolves to {proc, url}. */
function start(args, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${args.join(" ")} did not start: ${err}`));
    }, 30_000);
    proc.stderr.on("data", (d) => (err += d));
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code}: ${err}`));
    });
  });
}

/** SIGTERM, then the exit code (SIGKILL after 15 s). */
function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    proc.removeAllListeners("exit");
    proc.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    proc.kill("SIGTERM");
  });
}

let upstream;
let gateway;
let dir;

before(async () => {
  upstream = await start(["mock-upstream", "--port", "0"]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-sdk-node-"));
  const cfg = path.join(dir, "config.yaml");
  fs.writeFileSync(
    cfg,
    `model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: ${upstream.url}/v1
      api_key: sk-upstream-openai
  - model_name: gpt-4o-tools
    litellm_params:
      model: openai/gpt-4o-tool
      api_base: ${upstream.url}/v1
      api_key: sk-upstream-openai
  - model_name: broken
    litellm_params:
      model: openai/fail-500
      api_base: ${upstream.url}/v1
      api_key: sk-upstream-openai
general_settings:
  master_key: ${MASTER_KEY}
router_settings:
  num_retries: 0
`,
  );
  gateway = await start(
    ["--config", cfg, "--host", "127.0.0.1", "--port", "0"],
    { TOLLGATE_LOG: "warn", TOLLGATE_DB_PATH: path.join(dir, "tollgate.db"), LITELLM_MASTER_KEY: "" },
  );
});

after(async () => {
  const codes = [];
  if (gateway) codes.push(await stop(gateway.proc));
  if (upstream) await stop(upstream.proc);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(codes, [0], "the gateway exits 0 on SIGTERM");
});

function client(key = MASTER_KEY, baseURL = gateway.url + "/v1") {
  return new OpenAI({ baseURL, apiKey: key, maxRetries: 0, timeout: 30_000 });
}

test("non-streaming chat completion", async () => {
  const r = await client().chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "Say hello" }],
  });
  assert.equal(r.choices[0].message.content, "Hello from the mock upstream.");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok(r.usage.total_tokens > 0);
});

test("non-streaming at the root path, as OpenClaw posts", async () => {
  const r = await client(MASTER_KEY, gateway.url).chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "hi" }],
  });
  assert.equal(r.choices[0].message.content, "Hello from the mock upstream.");
});

test("streaming chat completion with usage", async () => {
  const stream = await client().chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "Hello from the mock upstream.");
  assert.equal(finish, "stop");
  assert.equal(usage?.completion_tokens, 7);
});

test("legacy completions, streaming and not", async () => {
  const r = await client().completions.create({ model: "gpt-4o", prompt: "Once upon a time", max_tokens: 5 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].text, " and so on.");
  const stream = await client().completions.create({
    model: "gpt-4o",
    prompt: "Once",
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) text += chunk.choices[0].text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, " and so on.");
  assert.equal(usage?.completion_tokens, 3);
});

test("streamed tool call arguments reassemble (stream helper)", async () => {
  const stream = client().chat.completions.stream({
    model: "gpt-4o-tools",
    messages: [{ role: "user", content: "weather in Paris?" }],
    tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
  });
  const done = await stream.finalChatCompletion();
  const call = done.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
  assert.equal(done.choices[0].finish_reason, "tool_calls");
});

test("wrong key is a 401 in the OpenAI error shape", async () => {
  await assert.rejects(
    client("sk-wrong").chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e.constructor.name}`);
      assert.equal(e.status, 401);
      assert.equal(e.code, "401");
      return true;
    },
  );
});

test("unknown model is a 400 naming the available models", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}`);
      assert.match(e.message, /gpt-4o/);
      return true;
    },
  );
});

test("upstream failure keeps its status, streaming too", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "broken", messages: [{ role: "user", content: "hi" }] }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 500,
  );
  await assert.rejects(
    (async () => {
      const s = await client().chat.completions.create({
        model: "broken",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      for await (const _ of s) {
        // drain
      }
    })(),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 500,
  );
});
