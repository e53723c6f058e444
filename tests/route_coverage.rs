//! Every route the server registers is accounted for: public ones are few and named, every other
//! one refuses a caller without a key, and every route that reaches a provider goes through the
//! same admission step (model access and budget) — the side door other gateways left open.
//!
//! The routes are read from the server's source, so a route added without being classified
//! here fails this test.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{client, gateway};
use serde_json::{Value, json};

/// Routes anyone may call.
const PUBLIC: &[&str] = &[
    "/",
    "/health/liveliness",
    "/health/liveness",
    "/health/readiness",
    "/metrics",
    "/metrics/",
];

/// Routes that reach a provider: they must admit (model access, budgets, limits).
const MODEL: &[&str] = &[
    "/chat/completions",
    "/v1/chat/completions",
    "/queue/chat/completions",
    "/openai/deployments/{model}/chat/completions",
    "/engines/{model}/chat/completions",
    "/embeddings",
    "/v1/embeddings",
    "/openai/deployments/{model}/embeddings",
    "/completions",
    "/v1/completions",
    "/openai/deployments/{model}/completions",
    "/engines/{model}/completions",
    "/moderations",
    "/v1/moderations",
    "/images/generations",
    "/v1/images/generations",
    "/openai/deployments/{model}/images/generations",
    "/v1/messages",
];

/// `(method, path)` of every `.route("…", get(…).post(…))` in `src/server`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text: String = std::fs::read_to_string(&p)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("");
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(\"") {
            rest = &rest[i + 8..];
            let end = rest.find('"').unwrap();
            let path = rest[..end].to_owned();
            // The method router runs to the `)` that closes `.route(`.
            let mut depth = 1;
            let mut j = end + 1;
            let bytes = rest.as_bytes();
            while depth > 0 && j < bytes.len() {
                match bytes[j] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            let methods = &rest[end + 1..j];
            for m in ["get", "post", "put", "delete", "patch"] {
                if methods.contains(&format!(",{m}(")) || methods.contains(&format!(".{m}(")) {
                    out.insert((m.to_owned(), path.clone()));
                }
            }
            rest = &rest[j..];
        }
    }
    out
}

fn config() -> &'static str {
    r#"
model_list:
  - model_name: allowed-model
    litellm_params:
      model: mock/allowed
      input_cost_per_token: 0.001
      output_cost_per_token: 0.001
  - model_name: other-model
    litellm_params:
      model: mock/other
general_settings:
  master_key: sk-master
"#
}

fn body_for(path: &str, model: Option<&str>) -> Value {
    let mut b = if path.contains("embeddings") {
        json!({"input": "hello"})
    } else if path.ends_with("/completions") && !path.contains("chat") {
        json!({"prompt": "hello"})
    } else if path.contains("moderations") {
        json!({"input": "hello"})
    } else if path.contains("images") {
        json!({"prompt": "a cat"})
    } else if path.contains("messages") {
        json!({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    } else {
        json!({"messages": [{"role": "user", "content": "hi"}]})
    };
    if let Some(m) = model {
        b["model"] = json!(m);
    }
    b
}

#[tokio::test]
async fn every_route_is_public_by_name_or_authenticated_and_model_routes_admit() {
    let routes = registered_routes();
    assert!(
        routes.len() > 50,
        "route scan found too few routes: {routes:?}"
    );
    let gw = gateway(config()).start();
    let c = client();

    let key = |body: Value| {
        let c = c.clone();
        let url = gw.url("/key/generate");
        async move {
            let v: Value = c
                .post(url)
                .bearer_auth("sk-master")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["key"].as_str().unwrap().to_owned()
        }
    };
    let restricted = key(json!({"models": ["allowed-model"]})).await;
    let broke = key(json!({"max_budget": 0.0})).await;

    for (method, path) in &routes {
        let concrete = path
            .replace("{model}", "allowed-model")
            .replace("{key}", "sk-none");
        let url = gw.url(&concrete);
        let send = |key: Option<&str>, body: Value| {
            let mut rb = match method.as_str() {
                "get" => c.get(&url),
                "post" => c.post(&url).json(&body),
                "delete" => c.delete(&url),
                "put" => c.put(&url).json(&body),
                _ => c.patch(&url).json(&body),
            };
            if let Some(k) = key {
                rb = rb.bearer_auth(k);
            }
            rb.send()
        };
        let model_in_path = path.contains("{model}");
        let status = send(None, json!({})).await.unwrap().status().as_u16();
        if PUBLIC.contains(&path.as_str()) {
            assert_ne!(status, 401, "{method} {path} is public");
            continue;
        }
        assert_eq!(
            status, 401,
            "{method} {path} must refuse a caller without a key"
        );
        if !MODEL.contains(&path.as_str()) {
            continue;
        }
        // Model access is checked by admission on this route…
        let (path_model, body_model) = if model_in_path {
            ("other-model", None)
        } else {
            ("", Some("other-model"))
        };
        let url_other = gw.url(&path.replace("{model}", path_model));
        let r = c
            .post(&url_other)
            .bearer_auth(&restricted)
            .json(&body_for(path, body_model))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            401,
            "{path}: a key not allowed the model is refused"
        );
        let text = r.text().await.unwrap();
        assert!(
            text.contains("not allowed to access model"),
            "{path}: {text}"
        );
        // …and so is the budget.
        let body_model = if model_in_path {
            None
        } else {
            Some("allowed-model")
        };
        let r = send(Some(&broke), body_for(path, body_model))
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 422, "{path}: a key over budget is refused: {text}");
        assert!(text.contains("Budget has been exceeded"), "{path}: {text}");
    }
    for p in PUBLIC.iter().chain(MODEL) {
        assert!(
            routes.iter().any(|(_, r)| r == p),
            "{p} is classified here but no longer registered"
        );
    }
}
