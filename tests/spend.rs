//! End-to-end spend accounting: the real binary, its SQLite (or PostgreSQL) store, and
//! upstreams on loopback. One row per request, key spend equal to the rows' sum, nothing lost
//! on SIGTERM or while the database is away.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use common::{Gateway, client, gateway};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tollgate::auth::hash_token;
use tollgate::store::Store;

const MASTER: &str = "sk-master-spend-test-0001";

/// An OpenAI-style upstream: every answer has a fresh id and usage 10 + 5, after `delay`;
/// a model named `…stream-forever…` streams a 4-character chunk every 100 ms for a minute.
async fn upstream(delay: Duration) -> String {
    upstream_counted(delay).await.0
}

/// [`upstream`], also counting the requests it has received.
async fn upstream_counted(delay: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |Json(req): Json<Value>| {
            seen2.fetch_add(1, Ordering::SeqCst);
            handle(req, delay)
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}"), seen)
}

async fn handle(req: Value, delay: Duration) -> axum::response::Response {
    {
        let model = req["model"].as_str().unwrap_or("").to_owned();
        if model.contains("stream-forever") {
            let chunks = futures::stream::iter(0..600).then(move |i| {
                    let model = model.clone();
                    async move {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let c = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model,
                            "choices": [{"index": 0, "delta": {"content": "abcd"}, "finish_reason": null}]});
                        Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {c}\n\n")))
                    }
                });
            return (
                [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(chunks),
            )
                .into_response();
        }
        tokio::time::sleep(delay).await;
        Json(json!({
                "id": format!("chatcmpl-{}", uuid::Uuid::new_v4()),
                "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }))
            .into_response()
    }
}

fn config(up: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: priced
    litellm_params:
      model: mock/my-model
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
  - model_name: gpt-4o
    litellm_params:
      model: mock/gpt-4o
  - model_name: upstream
    litellm_params:
      model: openai/gpt-4o
      api_base: {up}/v1
      api_key: sk-upstream-secret-key-42
  - model_name: forever
    litellm_params:
      model: openai/stream-forever
      api_base: {up}/v1
      api_key: sk-upstream-secret-key-42
      input_cost_per_token: 0.01
      output_cost_per_token: 0.1
general_settings:
  master_key: {MASTER}
  proxy_batch_write_at: 0.2
router_settings:
  num_retries: 0
{extra}
"#
    )
}

/// The master key's row, in the SQLite file the gateway will open.
async fn prepare_sqlite(dir: &std::path::Path) {
    let store = Store::open(&Store::sqlite_url(&dir.join("tollgate.db")), 1)
        .await
        .unwrap();
    create_total_tables(&store).await;
    store.pool.close().await;
}

async fn create_total_tables(store: &Store) {
    // The totals tables come with migration 1; a row for the master key lets the test read its total.
    sqlx::query(
        "INSERT INTO tollgate_keys (token, spend, created_at, updated_at) VALUES ($1, 0, 0, 0) ON CONFLICT (token) DO NOTHING",
    )
    .bind(hash_token(MASTER))
    .execute(&store.pool)
    .await
    .unwrap();
}

async fn chat(gw: &Gateway, model: &str, extra: Value) -> reqwest::Response {
    let mut body =
        json!({"model": model, "messages": [{"role": "user", "content": "how much is this?"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(gw: &Gateway, path: &str) -> Value {
    let r = client()
        .get(gw.url(path))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Polls `/spend/logs` until `pred` holds (the writer flushes every 0.2 s here).
async fn wait_logs(gw: &Gateway, query: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let v = get(gw, &format!("/spend/logs{query}")).await;
        let rows = v.as_array().cloned().unwrap_or_default();
        if pred(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spend logs never matched for {query}");
}

fn cost_header(r: &reqwest::Response) -> f64 {
    r.headers()
        .get("x-litellm-response-cost")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("x-litellm-response-cost")
}

#[tokio::test]
async fn costs_match_the_price_table_and_every_endpoint_answers() {
    let up = upstream(Duration::ZERO).await;
    let gw = gateway(&config(&up, "")).start();

    // Custom prices: 0.001 in, 0.002 out.
    let r = chat(
        &gw,
        "priced",
        json!({"metadata": {"tags": ["openclaw"]}, "user": "customer-7"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cost = cost_header(&r);
    let body: Value = r.json().await.unwrap();
    let (p, c) = (
        body["usage"]["prompt_tokens"].as_f64().unwrap(),
        body["usage"]["completion_tokens"].as_f64().unwrap(),
    );
    assert!((cost - (p * 0.001 + c * 0.002)).abs() < 1e-12, "{cost}");
    let id = body["id"].as_str().unwrap().to_owned();

    // The table's gpt-4o: 2.5e-6 in, 1e-5 out.
    let r = chat(&gw, "gpt-4o", json!({})).await;
    let cost2 = cost_header(&r);
    let b2: Value = r.json().await.unwrap();
    let expect = b2["usage"]["prompt_tokens"].as_f64().unwrap() * 2.5e-6
        + b2["usage"]["completion_tokens"].as_f64().unwrap() * 1e-5;
    assert!((cost2 - expect).abs() < 1e-15, "{cost2} vs {expect}");

    let rows = wait_logs(&gw, &format!("?request_id={id}"), |r| r.len() == 1).await;
    let row = &rows[0];
    assert_eq!(row["api_key"], hash_token(MASTER));
    assert_eq!(row["spend"].as_f64().unwrap(), cost);
    assert_eq!(row["prompt_tokens"].as_f64().unwrap(), p);
    assert_eq!(row["model_group"], "priced");
    assert_eq!(row["custom_llm_provider"], "mock");
    assert_eq!(row["call_type"], "acompletion");
    assert_eq!(row["status"], "success");
    assert_eq!(row["end_user"], "customer-7");
    assert_eq!(row["request_tags"], json!(["openclaw"]));
    assert_eq!(row["metadata"]["user_api_key"], hash_token(MASTER));
    assert!(row["startTime"].as_str().unwrap().ends_with('Z'));
    // The client's address, as the connection gave it.
    assert_eq!(row["requester_ip_address"], "127.0.0.1");

    // Two rows in all; filters by key (raw or hashed) agree.
    wait_logs(&gw, "", |r| r.len() == 2).await;
    let by_key = get(&gw, &format!("/spend/logs?api_key={MASTER}")).await;
    assert_eq!(by_key.as_array().unwrap().len(), 2);
    let v2 = get(&gw, "/spend/logs/v2?page=1&page_size=1").await;
    assert_eq!(
        (v2["total"].as_i64(), v2["total_pages"].as_i64()),
        (Some(2), Some(2))
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let summary = get(
        &gw,
        &format!("/spend/logs?start_date={today}&end_date={today}"),
    )
    .await;
    let total = summary[0]["spend"].as_f64().unwrap();
    assert!((total - (cost + cost2)).abs() < 1e-12);
    assert!(summary[0]["models"]["my-model"].as_f64().is_some());

    let keys = get(&gw, "/global/spend/keys?limit=5").await;
    assert!((keys[0]["total_spend"].as_f64().unwrap() - (cost + cost2)).abs() < 1e-12);
    let models = get(&gw, "/global/spend/models").await;
    assert_eq!(models[0]["model"], "my-model");
    let tags = get(&gw, "/spend/tags").await;
    assert_eq!(tags[0]["individual_request_tag"], "openclaw");
    assert_eq!(tags[0]["log_count"], 1);
    let g = get(&gw, "/global/spend").await;
    assert!((g["spend"].as_f64().unwrap() - (cost + cost2)).abs() < 1e-12);
    let report = get(
        &gw,
        &format!("/global/spend/report?start_date={today}&end_date={today}&group_by=customer"),
    )
    .await;
    assert_eq!(report[0]["customers"].as_array().unwrap().len(), 2);
    let report = get(
        &gw,
        &format!("/global/spend/report?start_date={today}&end_date={today}&group_by=api_key"),
    )
    .await;
    assert_eq!(report[0]["api_key"], hash_token(MASTER));

    let calc: Value = client()
        .post(gw.url("/spend/calculate"))
        .bearer_auth(MASTER)
        .json(&json!({"completion_response": {"model": "gpt-4o", "usage": {"prompt_tokens": 1000, "completion_tokens": 100}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        (calc["cost"].as_f64().unwrap() - 0.0035).abs() < 1e-12,
        "{calc}"
    );

    let m = client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("litellm_proxy_total_requests_metric_total{"),
        "{m}"
    );
    assert!(m.contains("litellm_spend_metric_total{"));
    assert!(m.contains("litellm_request_total_latency_metric_bucket{"));
    assert!(m.contains("litellm_deployment_state{"));
    assert!(!m.contains(MASTER));

    // A virtual key may not read the global views (no virtual keys here: bad key is 401).
    let r = client()
        .get(gw.url("/global/spend"))
        .bearer_auth("sk-nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_stream_cut_off_by_the_client_is_logged_with_the_tokens_received() {
    let up = upstream(Duration::ZERO).await;
    let gw = gateway(&config(&up, "")).start();
    let r = chat(&gw, "forever", json!({"stream": true})).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while seen.matches("abcd").count() < 3 {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body); // the client goes away mid-stream
    let rows = wait_logs(&gw, "", |r| r.len() == 1).await;
    let row = &rows[0];
    assert_eq!(row["status"], "failure");
    let completion = row["completion_tokens"].as_i64().unwrap();
    // Each chunk is 4 characters ≈ 1 token: at least the 3 received, far fewer than 600.
    assert!((3..100).contains(&completion), "{completion}");
    let prompt = row["prompt_tokens"].as_f64().unwrap();
    let expect = prompt * 0.01 + completion as f64 * 0.1;
    assert!(
        (row["spend"].as_f64().unwrap() - expect).abs() < 1e-9,
        "{row}"
    );
    assert_eq!(row["metadata"]["error_information"]["error_code"], "499");
}

#[tokio::test]
async fn a_thousand_concurrent_requests_give_a_thousand_rows_and_matching_key_spend() {
    let up = upstream(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    prepare_sqlite(dir.path()).await;
    let mut gw = gateway(&config(&up, "")).dir(dir).start();
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (c, url, sem) = (c.clone(), gw.url("/v1/chat/completions"), sem.clone());
        let model = if i % 2 == 0 { "priced" } else { "upstream" };
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = c
                .post(url)
                .bearer_auth(MASTER)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": format!("request {i}")}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            cost_header(&r)
        }));
    }
    let mut sum = 0.0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    assert!(sum > 0.0);
    assert_eq!(gw.terminate(), Some(0));

    let store = Store::open(&Store::sqlite_url(&gw.config_dir().join("tollgate.db")), 1)
        .await
        .unwrap();
    let (n, total): (i64, f64) =
        sqlx::query_as("SELECT COUNT(*), SUM(spend) FROM tollgate_spend_logs WHERE api_key = $1")
            .bind(hash_token(MASTER))
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert_eq!(n, 1000);
    assert!((total - sum).abs() < 1e-9, "{total} vs {sum}");
    let (key_spend,): (f64,) = sqlx::query_as("SELECT spend FROM tollgate_keys WHERE token = $1")
        .bind(hash_token(MASTER))
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!((key_spend - sum).abs() < 1e-9, "{key_spend} vs {sum}");
    let (rollup,): (f64,) =
        sqlx::query_as("SELECT SUM(spend) FROM tollgate_daily_spend WHERE tag = ''")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert!((rollup - sum).abs() < 1e-9);
}

#[tokio::test]
async fn sigterm_mid_load_loses_no_event() {
    let (up, seen) = upstream_counted(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    prepare_sqlite(dir.path()).await;
    // A long batch interval: only the shutdown flush writes.
    let cfg = config(&up, "").replace("proxy_batch_write_at: 0.2", "proxy_batch_write_at: 60");
    let gw = gateway(&cfg).dir(dir).start();
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (c, url) = (c.clone(), gw.url("/v1/chat/completions"));
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .bearer_auth(MASTER)
                .json(&json!({"model": "upstream", "messages": [{"role": "user", "content": format!("r{i}")}]}))
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {
                    let v: Value = r.json().await.unwrap();
                    Some(Some(v["id"].as_str().unwrap().to_owned()))
                }
                Ok(_) => Some(None),
                Err(_) => None,
            }
        }));
    }
    // SIGTERM once a good part of the load is waiting on the upstream.
    for _ in 0..200 {
        if seen.load(Ordering::SeqCst) >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut gw = tokio::task::spawn_blocking(move || {
        let mut gw = gw;
        assert_eq!(gw.terminate(), Some(0));
        gw
    })
    .await
    .unwrap();
    let mut answered = 0;
    let mut ok_ids = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            answered += 1;
            ok_ids.extend(id);
        }
    }
    assert!(ok_ids.len() > 50, "load was in flight: {}", ok_ids.len());
    let store = Store::open(&Store::sqlite_url(&gw.config_dir().join("tollgate.db")), 1)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tollgate_spend_logs")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(n, answered, "one row per answered request");
    for id in &ok_ids {
        let (k,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tollgate_spend_logs WHERE request_id = $1")
                .bind(id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(k, 1, "{id}");
    }
    gw.terminate();
}

#[tokio::test]
async fn json_logs_webhook_and_otel_spans_never_carry_a_key() {
    let up = upstream(Duration::ZERO).await;
    // The webhook receiver.
    let got = Arc::new(parking_lot::Mutex::new(Vec::<Value>::new()));
    let got2 = got.clone();
    // And an OTLP/HTTP collector.
    let spans = Arc::new(parking_lot::Mutex::new(Vec::<Value>::new()));
    let spans2 = spans.clone();
    let hook = axum::Router::new()
        .route(
            "/log",
            axum::routing::post(move |Json(v): Json<Value>| {
                let got = got2.clone();
                async move {
                    got.lock().extend(v.as_array().cloned().unwrap_or_default());
                    "ok"
                }
            }),
        )
        .route(
            "/v1/traces",
            axum::routing::post(move |Json(v): Json<Value>| {
                let spans = spans2.clone();
                async move {
                    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                            spans
                                .lock()
                                .extend(ss["spans"].as_array().cloned().unwrap_or_default());
                        }
                    }
                    "{}"
                }
            }),
        );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = l.local_addr().unwrap();
    let hook_url = format!("http://{hook_addr}/log");
    tokio::spawn(async move {
        let _ = axum::serve(l, hook).await;
    });
    let mut gw = gateway(&config(
        &up,
        "litellm_settings:\n  callbacks: [\"generic_api\", \"otel\"]",
    ))
    .env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &format!("http://{hook_addr}"),
    )
    .env("OTEL_FLUSH_INTERVAL", "0.2")
    .env("JSON_LOGS", "True")
    .env("TOLLGATE_LOG", "debug")
    .env("GENERIC_LOGGER_ENDPOINT", &hook_url)
    .env("GENERIC_LOGGER_FLUSH_INTERVAL", "0.2")
    .start();
    for m in ["upstream", "priced"] {
        assert_eq!(chat(&gw, m, json!({})).await.status(), 200);
    }
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-wrong-key-not-logged-777")
        .json(&json!({"model": "priced", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for _ in 0..50 {
        if got.lock().len() >= 2 && spans.lock().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.terminate(), Some(0));
    let events = got.lock().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["response_cost"].as_f64().is_some()));
    assert_eq!(
        events[0]["metadata"]["user_api_key_hash"],
        hash_token(MASTER)
    );
    let spans = spans.lock().clone();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(
        names.contains(&"chat upstream") && names.contains(&"chat priced"),
        "{names:?}"
    );
    assert!(
        spans[0]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "gen_ai.usage.input_tokens")
    );
    let logs = gw.logs();
    let all = format!("{logs}{events:?}{spans:?}");
    for secret in [
        MASTER,
        "sk-upstream-secret-key-42",
        "sk-wrong-key-not-logged-777",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
}

/// A TCP proxy to PostgreSQL that the test can take down (dropping every connection and
/// refusing new ones) and bring back: a database outage without touching the real server.
struct PgProxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl PgProxy {
    async fn start(target: String) -> PgProxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                conns2.lock().push(tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        PgProxy { port, up, conns }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// Multi-threaded: the proxy must keep running while `start()` blocks on the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_for_a_while_loses_no_event() {
    let Ok(base) = std::env::var("TOLLGATE_TEST_DATABASE_URL") else {
        eprintln!("TOLLGATE_TEST_DATABASE_URL unset: skipping the PostgreSQL outage test");
        return;
    };
    let url: reqwest::Url = base.parse().unwrap();
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    );
    let schema = format!("outage_{}", uuid::Uuid::new_v4().simple());
    let admin = Store::open(&base, 1).await.expect("PostgreSQL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin.pool)
        .await
        .unwrap();
    let direct = format!("{base}?options=-csearch_path%3D{schema}");
    let store = Store::open(&direct, 2).await.unwrap();
    create_total_tables(&store).await;

    let proxy = PgProxy::start(target).await;
    let mut via = url.clone();
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.port)).unwrap();
    let via = format!("{via}?options=-csearch_path%3D{schema}");

    let up = upstream(Duration::ZERO).await;
    let gw = gateway(&config(&up, "")).env("DATABASE_URL", &via).start();
    let count = || async {
        let (n, s): (i64, Option<f64>) =
            sqlx::query_as("SELECT COUNT(*), SUM(spend) FROM tollgate_spend_logs")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        (n, s.unwrap_or(0.0))
    };

    // Phase 1: the database goes away, requests keep being served, then it comes back.
    proxy.down();
    let mut sum = 0.0;
    for _ in 0..100 {
        let r = chat(&gw, "priced", json!({})).await;
        assert_eq!(r.status(), 200);
        sum += cost_header(&r);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count().await.0,
        0,
        "nothing could be written while it was away"
    );
    proxy.up();
    let mut n = 0;
    for _ in 0..120 {
        n = count().await.0;
        if n == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(n, 100);

    // Phase 2: away again and the gateway stops meanwhile: events spill to disk, and the
    // next start replays them.
    proxy.down();
    for _ in 0..50 {
        let r = chat(&gw, "priced", json!({})).await;
        sum += cost_header(&r);
    }
    let dir = gw.into_dir();
    assert!(dir.path().join("tollgate-spend-spill.jsonl").exists());
    proxy.up();
    let gw = gateway(&config(&up, ""))
        .env("DATABASE_URL", &via)
        .dir(dir)
        .start();
    for _ in 0..120 {
        if count().await.0 == 150 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (n, total) = count().await;
    assert_eq!(n, 150);
    assert!((total - sum).abs() < 1e-9);
    let (key_spend,): (f64,) = sqlx::query_as("SELECT spend FROM tollgate_keys WHERE token = $1")
        .bind(hash_token(MASTER))
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!((key_spend - sum).abs() < 1e-9, "{key_spend} vs {sum}");
    drop(gw);
    store.pool.close().await;
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin.pool)
        .await;
}
