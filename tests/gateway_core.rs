//! End-to-end: the real binary in front of a mock OpenAI upstream.

mod common;

use std::time::Duration;

use common::{Gateway, client, gateway, mock_upstream};
use serde_json::{Value, json};

fn config(upstream: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {upstream}/v1
      api_key: sk-upstream
  - model_name: flaky
    litellm_params:
      model: openai/fail-500
      api_base: {upstream}/v1
      api_key: sk-upstream
  - model_name: sluggish
    litellm_params:
      model: openai/slow
      api_base: {upstream}/v1
      timeout: 0.3
general_settings:
  master_key: sk-master
  max_request_size_mb: 1
  proxy_batch_write_at: 0.2
router_settings:
  num_retries: 0
"#
    )
}

/// The spend log, polled until `done` holds (the writer flushes every 0.2 s here).
async fn spend_rows_until(gw: &Gateway, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let rows: Value = client()
            .get(gw.url("/spend/logs"))
            .bearer_auth("sk-master")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = rows.as_array().cloned().unwrap_or_default();
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the spend log never got the rows expected");
}

/// Rows of one `call_type`.
fn count(rows: &[Value], call_type: &str) -> usize {
    rows.iter().filter(|r| r["call_type"] == call_type).count()
}

#[tokio::test]
async fn chat_round_trip_with_auth_and_headers() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"seed":42});

    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "401");

    let r = c
        .post(gw.url("/chat/completions"))
        .bearer_auth("sk-master")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for h in [
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-model-group",
        "x-litellm-overhead-duration-ms",
    ] {
        assert!(r.headers().contains_key(h), "missing {h}");
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    let seen = mock.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.body["seed"], 42, "unknown fields pass through");
    assert_eq!(last.body["model"], "gpt-4o");
    assert!(
        last.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer sk-upstream")
    );

    // LiteLLM's priority-queue route: chat, its `priority` kept from the upstream; elsewhere
    // `priority` is a field like any other (vLLM schedules by it).
    let mut queued = body.clone();
    queued["priority"] = json!(1);
    let r = c
        .post(gw.url("/queue/chat/completions"))
        .bearer_auth("sk-master")
        .json(&queued)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        mock.requests()
            .last()
            .unwrap()
            .body
            .get("priority")
            .is_none()
    );
    c.post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&queued)
        .send()
        .await
        .unwrap();
    assert_eq!(mock.requests().last().unwrap().body["priority"], 1);
}

#[tokio::test]
async fn upstream_errors_keep_status_and_bad_input_is_400() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "sk-master")
        .json(&json!({"model":"flaky","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("line 1"));
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&json!({"model":"nope","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-4o"));
}

#[tokio::test]
async fn streams_and_strips_usage_the_client_did_not_ask_for() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let text = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&json!({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(!text.contains("\"usage\""), "{text}");
    let sent = mock.requests().last().unwrap().body.clone();
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "gateway asks upstream for usage"
    );

    let text = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&json!({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"usage\""));
}

#[tokio::test]
async fn legacy_completions_are_forwarded_streamed_and_accounted() {
    let (up, mock) = mock_upstream().await;
    // A group mixing an OpenAI-compatible and an Anthropic deployment, and an Anthropic-only one.
    let groups = format!(
        r#"  - model_name: mixed
    litellm_params:
      model: openai/gpt-4o
      api_base: {up}/v1
  - model_name: mixed
    litellm_params:
      model: anthropic/claude-x
      api_base: {up}
      api_key: sk-upstream
  - model_name: claude-only
    litellm_params:
      model: anthropic/claude-x
      api_base: {up}
      api_key: sk-upstream
general_settings:"#
    );
    let gw = gateway(&config(&up).replacen("general_settings:", &groups, 1)).start();
    let c = client();
    let post = |path: &str, body: Value| {
        c.post(gw.url(path))
            .bearer_auth("sk-master")
            .json(&body)
            .send()
    };

    let r = post(
        "/v1/completions",
        json!({"model": "gpt-4o", "prompt": "Once upon a time", "max_tokens": 5, "suffix": "END"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "gpt-4o");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], " and so on.");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(
        sent.path, "/completions",
        "forwarded, not turned into a chat"
    );
    assert_eq!(sent.body["prompt"], "Once upon a time");
    assert_eq!(sent.body["suffix"], "END", "unknown fields pass through");

    // Streamed: the upstream's events in order, its usage chunk dropped unless asked for.
    let text = post(
        "/completions",
        json!({"model": "gpt-4o", "prompt": "Once", "stream": true, "stream_options": null, "metadata": {"tags": ["legacy"]}}),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let and = text.find(r#""text":" and""#).expect(&text);
    let on = text.find(r#""text":" on.""#).expect(&text);
    assert!(and < on && text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"usage\""), "{text}");
    let sent = mock.requests().last().unwrap().body.clone();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let text = post(
        "/v1/completions",
        json!({"model": "gpt-4o", "prompt": "Once", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(text.contains("\"usage\""), "{text}");

    // `mock_response` answers without calling the upstream, as for chat.
    let before = mock.requests().len();
    let v: Value = post(
        "/v1/completions",
        json!({"model": "gpt-4o", "prompt": "x", "mock_response": "canned"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["text"], "canned");
    assert_eq!(mock.requests().len(), before);

    // Azure-style path; errors as for chat.
    let r = post(
        "/openai/deployments/gpt-4o/completions",
        json!({"prompt": ["a", "b"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = post("/v1/completions", json!({"model": "gpt-4o"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "prompt");
    let r = post("/v1/completions", json!({"model": "flaky", "prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 500);

    // Only the deployments that serve /completions are picked; a group with none says so.
    for _ in 0..6 {
        let r = post("/v1/completions", json!({"model": "mixed", "prompt": "x"}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = post(
        "/v1/completions",
        json!({"model": "claude-only", "prompt": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/chat/completions"),
        "{e}"
    );

    // One spend row per call, logged as LiteLLM logs them.
    // (13: the refused claude-only call is logged as failed.)
    let rows = spend_rows_until(&gw, |rows| count(rows, "atext_completion") == 13).await;
    let tagged: Vec<_> = rows
        .iter()
        .filter(|r| r["request_tags"] == json!(["legacy"]))
        .collect();
    assert_eq!(tagged.len(), 1, "{rows:?}");
    assert_eq!(
        tagged[0]["completion_tokens"], 3,
        "usage asked for despite null"
    );
}

#[tokio::test]
async fn moderations_and_images_are_forwarded_and_accounted() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let post = |path: &str, body: Value| {
        c.post(gw.url(path))
            .bearer_auth("sk-master")
            .json(&body)
            .send()
    };
    let r = post(
        "/v1/moderations",
        json!({"model": "gpt-4o", "input": ["one", "two"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-litellm-call-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/moderations");
    assert_eq!(sent.body["input"], json!(["one", "two"]));

    let v: Value = post(
        "/images/generations",
        json!({"model": "gpt-4o", "prompt": "a cat", "n": 2, "size": "256x256"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/images/generations");
    assert_eq!(sent.body["size"], "256x256", "fields pass through");
    let r = post(
        "/openai/deployments/gpt-4o/images/generations",
        json!({"prompt": "a dog"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let r = post("/v1/moderations", json!({"model": "gpt-4o"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "input");
    // No model: OpenAI's default, which this config does not serve.
    let r = post("/v1/moderations", json!({"input": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains("omni-moderation-latest"), "{e}");

    // `mock_response` answers offline, as for chat; `n` is bounded; no streaming.
    let before = mock.requests().len();
    let v: Value = post(
        "/v1/images/generations",
        json!({"model": "gpt-4o", "prompt": "x", "mock_response": "ok"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        v["data"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png")
    );
    assert_eq!(mock.requests().len(), before);
    let r = post(
        "/v1/images/generations",
        json!({"model": "gpt-4o", "prompt": "x", "n": 1000000000000u64, "mock_response": "ok"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(
        "/v1/images/generations",
        json!({"model": "gpt-4o", "prompt": "x", "stream": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/v1/images/generations", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    spend_rows_until(&gw, |rows| {
        // The mocked image and the refused n=10^12 one are logged too.
        count(rows, "amoderation") == 1 && count(rows, "aimage_generation") == 4
    })
    .await;
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let (up, _mock) = mock_upstream().await;
    let mut gw = gateway(&config(&up)).start();
    let r = client()
        .get(gw.url("/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "\"I'm alive!\"");
    assert_eq!(gw.terminate(), Some(0));
}

/// On SIGTERM every serving thread stops taking connections and finishes what it has: calls
/// in flight on several threads (each client its own connection, dealt in turn) all answer,
/// and the process exits 0.
#[tokio::test]
async fn sigterm_lets_calls_in_flight_on_every_thread_finish() {
    let (up, _mock) = mock_upstream().await;
    let cfg = config(&up).replace("      timeout: 0.3\n", "");
    let mut gw = gateway(&cfg).arg("--num_workers").arg("3").start();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            // A client per call: its own connection.
            client()
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth("sk-master")
                .json(&json!({"model":"sluggish","messages":[{"role":"user","content":"hi"}]}))
                .send()
        })
        .map(tokio::spawn)
        .collect();
    // The upstream answers after 2 s: stop while all four wait for it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let exit = tokio::task::spawn_blocking(move || {
        let code = gw.terminate();
        (code, gw)
    });
    for call in calls {
        let r = call.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
    }
    let (code, _gw) = exit.await.unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn upstream_timeout_is_408_and_oversized_body_is_413() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&json!({"model":"sluggish","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("Timeout"));

    let big = "x".repeat(2 * 1024 * 1024);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-master")
        .json(&json!({"model":"gpt-4o","messages":[{"role":"user","content": big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "413");
    // The process keeps serving (a new connection: the server closes the one whose body it refused).
    let r = client()
        .get(gw.url("/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn azure_style_path_and_model_listing() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let r = c
        .post(gw.url("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"))
        .header("api-key", "sk-master")
        .json(&json!({"messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-4o")
    );
    let info: Value = c
        .get(gw.url("/model/info"))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = info.to_string();
    assert!(!text.contains("sk-upstream"), "secrets never leave: {text}");

    // One entry per model group, with the price table's facts for gpt-4o.
    let groups: Value = c
        .get(gw.url("/model_group/info"))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["model_group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flaky", "gpt-4o", "sluggish"], "{groups}");
    let g = &groups["data"][1];
    assert_eq!(g["providers"], json!(["openai"]));
    assert_eq!(g["mode"], "chat");
    assert!(g["max_input_tokens"].as_u64().unwrap() > 0, "{g}");
    assert!(g["input_cost_per_token"].as_f64().unwrap() > 0.0, "{g}");
    assert_eq!(g["supports_function_calling"], true);
    assert!(!groups.to_string().contains("sk-upstream"));
    let one: Value = c
        .get(gw.url("/model_group/info?model_group=gpt-4o"))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    let r = c
        .get(gw.url("/model_group/info?model_group=nope"))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c.get(gw.url("/model_group/info")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn bad_config_exits_non_zero_with_the_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: antropic/claude\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model_list[0].litellm_params.model: unknown provider \"antropic\" — did you mean \"anthropic\"?"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A page in a browser on another origin: preflights answered before auth, LiteLLM's
/// defaults (`*`, no credentials), and `LITELLM_CORS_ORIGINS` narrowing it.
#[tokio::test]
async fn browsers_get_cors_answers() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let c = client();
    let preflight = |gw: &Gateway, origin: &str| {
        c.request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let r = preflight(&gw, "https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert!(h.get("access-control-allow-credentials").is_none());

    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]});
    let chat = |origin: Option<&str>, key: Option<&str>| {
        let mut rq = c.post(gw.url("/v1/chat/completions")).json(&body);
        if let Some(o) = origin {
            rq = rq.header("origin", o);
        }
        if let Some(k) = key {
            rq = rq.bearer_auth(k);
        }
        rq.send()
    };
    let r = chat(Some("https://app.example"), Some("sk-master"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // An error is readable by the page too.
    let r = chat(Some("https://app.example"), None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // Not a browser: nothing added.
    let r = chat(None, Some("sk-master")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Any route, known or not, admin ones too; a method outside the standard ones is refused.
    for path in ["/key/generate", "/no/such/route", "/v1/models"] {
        let r = c
            .request(reqwest::Method::OPTIONS, gw.url(path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-max-age"], "600");
        assert!(r.headers().get("access-control-allow-headers").is_none());
        assert_eq!(r.text().await.unwrap(), "OK");
    }
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "TRACE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.text().await.unwrap(), "Disallowed CORS method");
    // Not a preflight (no requested method): routed as usual, and readable by the page.
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    let narrow = gateway(&config(&up))
        .env(
            "LITELLM_CORS_ORIGINS",
            "https://app.example, https://admin.example",
        )
        .start();
    let r = preflight(&narrow, "https://evil.example").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // An allowed origin is named back, with credentials: on a preflight and on an answer.
    let named = |r: &reqwest::Response, origin: &str| {
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert_eq!(r.headers()["vary"], "Origin");
    };
    let r = preflight(&narrow, "https://admin.example").await.unwrap();
    named(&r, "https://admin.example");
    let models = |origin: &'static str| {
        c.get(narrow.url("/v1/models"))
            .header("origin", origin)
            .bearer_auth("sk-master")
            .send()
    };
    let r = models("https://app.example").await.unwrap();
    named(&r, "https://app.example");
    let r = models("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
