//! End-to-end: the real binary in front of a mock OpenAI upstream.

mod common;

use common::{client, gateway, mock_upstream};
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
general_settings:
  master_key: sk-master
router_settings:
  num_retries: 0
"#
    )
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
