//! End-to-end: budgets and rate limits enforced by the real binary, alone and as two instances
//! sharing PostgreSQL and Redis.

mod common;
mod db;

use common::{Gateway, client, gateway, mock_upstream};
use serde_json::{Value, json};

fn config(upstream: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: priced
    litellm_params:
      model: openai/gpt-4o
      api_base: {upstream}/v1
      api_key: sk-up
      input_cost_per_token: 0.001
      output_cost_per_token: 0.001
  - model_name: slow
    litellm_params:
      model: openai/slow-model
      api_base: {upstream}/v1
      api_key: sk-up
      input_cost_per_token: 0.001
      output_cost_per_token: 0.001
general_settings:
  master_key: sk-master
  user_api_key_cache_ttl: 1
router_settings:
  num_retries: 0
{extra}
"#
    )
}

async fn generate(gw: &Gateway, body: Value) -> String {
    let r = client()
        .post(gw.url("/key/generate"))
        .bearer_auth("sk-master")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

fn cost_of(r: &reqwest::Response) -> f64 {
    r.headers()["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn over_budget_key_gets_litellms_error() {
    let (up, _m) = mock_upstream().await;
    let gw = gateway(&config(&up, "")).start();
    let key = generate(&gw, json!({"max_budget": 0.05})).await;
    let mut ok = 0;
    let mut last = None;
    for _ in 0..20 {
        let r = chat(&gw, &key, "priced").await;
        if r.status() == 200 {
            ok += 1;
            continue;
        }
        last = Some((r.status(), r.json::<Value>().await.unwrap()));
        break;
    }
    let (status, e) = last.expect("the budget was never enforced");
    assert_eq!(status, 422);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    assert_eq!(e["error"]["code"], "422");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Budget has been exceeded! Current cost: "),
        "{msg}"
    );
    assert!(msg.ends_with(", Max budget: 0.05"), "{msg}");
    assert!(ok >= 1);
    // /key/info reports the spend counted so far.
    let info: Value = client()
        .get(gw.url(&format!("/key/info?key={key}")))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["info"]["spend"].as_f64().unwrap() >= 0.05, "{info}");
}

#[tokio::test]
async fn budget_status_code_is_configurable() {
    let (up, _m) = mock_upstream().await;
    let gw = gateway(&config(
        &up,
        "litellm_settings:\n  budget_exceeded_status_code: 429",
    ))
    .start();
    let key = generate(&gw, json!({"max_budget": 0})).await;
    let r = chat(&gw, &key, "priced").await;
    assert_eq!(r.status(), 429);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "budget_exceeded");
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let (up, _m) = mock_upstream().await;
    let gw = gateway(&config(&up, "")).start();
    let key = generate(&gw, json!({"rpm_limit": 2})).await;
    let r = chat(&gw, &key, "priced").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit-requests"], "2");
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "1");
    assert_eq!(r.headers()["x-litellm-key-rpm-limit"], "2");
    assert_eq!(chat(&gw, &key, "priced").await.status(), 200);
    let r = chat(&gw, &key, "priced").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded for api_key")
    );

    let key = generate(&gw, json!({"max_parallel_requests": 0})).await;
    let r = chat(&gw, &key, "priced").await;
    assert_eq!(r.status(), 429);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Max parallel request limit reached")
    );
}

/// Fifty calls at once against a budget that holds a few: reservations keep the overshoot to
/// the estimation error of the calls in flight.
#[tokio::test]
async fn fifty_concurrent_calls_do_not_blow_the_budget() {
    let (up, _m) = mock_upstream().await;
    let gw = gateway(&config(&up, "")).start();
    // Learn the cost of one call (and so the reservation per call).
    let probe = generate(&gw, json!({})).await;
    let r = chat(&gw, &probe, "slow").await;
    assert_eq!(r.status(), 200);
    let cost = cost_of(&r);
    assert!(cost > 0.0);
    let budget = cost * 5.0;
    let key = generate(&gw, json!({"max_budget": budget})).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let key = key.clone();
        let url = gw.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "slow", "messages": [{"role": "user", "content": "hello there"}]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 422).count();
    assert_eq!(ok + refused, 50, "{statuses:?}");
    assert_eq!(ok, 5, "exactly the budget's worth in flight: {statuses:?}");
    let info: Value = client()
        .get(gw.url(&format!("/key/info?key={key}")))
        .bearer_auth("sk-master")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let spend = info["info"]["spend"].as_f64().unwrap();
    assert!(spend <= budget + 1e-9, "spend {spend} over budget {budget}");
}

/// Two gateways behind a (pretend) load balancer, sharing PostgreSQL and Redis, enforce one
/// budget: a key made on one works on the other at once, and calls alternate between them.
#[tokio::test]
async fn two_instances_share_one_budget() {
    let Some(pg) = db::fresh_pg("two_instances_share_one_budget").await else {
        return;
    };
    let Some(redis) = db::redis_url("two_instances_share_one_budget") else {
        return;
    };
    let (up, _m) = mock_upstream().await;
    let prefix = format!("tollgate-e2e-{}", uuid::Uuid::new_v4().simple());
    let start = || {
        gateway(&config(&up, ""))
            .env("DATABASE_URL", &pg)
            .env("REDIS_URL", &redis)
            .env("TOLLGATE_REDIS_PREFIX", &prefix)
            .start()
    };
    let a = start();
    let b = start();
    let probe = generate(&a, json!({})).await;
    let cost = cost_of(&chat(&a, &probe, "priced").await);
    let key = generate(
        &a,
        json!({"max_budget": cost * 3.0, "budget_duration": "monthly"}),
    )
    .await;
    let mut ok = 0;
    for i in 0..10 {
        let gw = if i % 2 == 0 { &b } else { &a };
        let r = chat(gw, &key, "priced").await;
        match r.status().as_u16() {
            200 => ok += 1,
            422 => {}
            s => panic!("unexpected {s}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(ok, 3, "one budget of three calls across both instances");
    for gw in [&a, &b] {
        assert_eq!(chat(gw, &key, "priced").await.status(), 422);
    }
}
