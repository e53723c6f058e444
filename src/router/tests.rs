use super::*;
use crate::config::{Env, parse};

fn router(yaml: &str) -> Router {
    let cfg = parse(yaml, Env::from_map::<[(&str, &str); 0], &str, &str>([])).unwrap();
    let mut r = Router::new(&cfg, http::Client::new(&cfg.env).unwrap());
    r.backoff_base = Duration::from_millis(1);
    r
}

fn req(model: &str) -> ChatRequest {
    serde_json::from_value(
        serde_json::json!({"model": model, "messages": [{"role":"user","content":"hi"}]}),
    )
    .unwrap()
}

#[test]
fn wildcards_and_aliases_resolve() {
    let r = router(
        "model_list:\n  - model_name: 'anthropic/*'\n    litellm_params: {model: 'anthropic/*'}\n  - model_name: gpt-4o\n    litellm_params: {model: mock/gpt-4o}\nrouter_settings:\n  model_group_alias: {gpt4: gpt-4o}\n",
    );
    assert_eq!(r.resolve_group("anthropic/claude-3"), Some("anthropic/*"));
    assert_eq!(r.resolve_group("gpt4"), Some("gpt-4o"));
    assert_eq!(r.resolve_group("nope"), None);
    assert!(wildcard_match("*", "x"));
}

#[tokio::test]
async fn falls_back_after_retries_are_spent() {
    let r = router(
        "model_list:\n  - model_name: bad\n    litellm_params: {model: mock/x, mock_response: litellm.RateLimitError}\n  - model_name: good\n    litellm_params: {model: mock/y, mock_response: fine}\nrouter_settings:\n  num_retries: 1\n  fallbacks: [{bad: [good]}]\n",
    );
    let (out, attempt) = r
        .chat("bad", req("bad"), false, &CallOptions::default(), None)
        .await
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(attempt.model_group, "good");
    assert_eq!(attempt.fallbacks, 1);
    assert_eq!(attempt.retries, 1);
    let Outcome::Reply(reply) = out else { panic!() };
    assert_eq!(
        reply.into_typed().unwrap().choices[0]
            .message
            .content
            .as_ref()
            .unwrap()
            .text(),
        "fine"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_or_fallen_back() {
    let r = router(
        "model_list:\n  - model_name: bad\n    litellm_params: {model: mock/x, mock_response: litellm.BadRequestError}\n  - model_name: good\n    litellm_params: {model: mock/y}\nrouter_settings:\n  fallbacks: [{bad: [good]}]\n",
    );
    let (err, attempt) = r
        .chat("bad", req("bad"), false, &CallOptions::default(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.status.as_u16(), 400);
    assert_eq!(attempt.unwrap().retries, 0);
}

#[tokio::test]
async fn a_failing_deployment_is_cooled_and_its_sibling_serves() {
    let r = router(
        "model_list:\n  - model_name: g\n    litellm_params: {model: mock/a, mock_response: litellm.RateLimitError}\n  - model_name: g\n    litellm_params: {model: mock/b, mock_response: ok}\nrouter_settings:\n  num_retries: 2\n",
    );
    for _ in 0..5 {
        let (_, attempt) = r
            .chat("g", req("g"), false, &CallOptions::default(), None)
            .await
            .map_err(|e| e.0)
            .unwrap();
        assert_eq!(attempt.model, "b");
    }
}

#[test]
fn deployment_params_are_defaults_the_request_overrides() {
    let cfg = parse(
        "model_list:\n  - model_name: g\n    litellm_params: {model: mock/a, temperature: 0.2, seed: 9}\n",
        Env::from_map::<[(&str, &str); 0], &str, &str>([]),
    )
    .unwrap();
    let mut r = req("g");
    r.temperature = Some(0.9);
    apply_deployment_defaults(&mut r, &cfg.deployments[0]);
    assert_eq!(r.temperature, Some(0.9));
    assert_eq!(r.extra["seed"], 9);
}

#[tokio::test]
async fn text_completions_fall_back_as_chat_does() {
    let r = router(
        "model_list:\n  - model_name: bad\n    litellm_params: {model: mock/x, mock_response: litellm.RateLimitError}\n  - model_name: good\n    litellm_params: {model: mock/y, mock_response: fine}\n  - model_name: other\n    litellm_params: {model: mock/z, mock_response: other}\nrouter_settings:\n  num_retries: 1\n  fallbacks: [{bad: [good]}]\n",
    );
    let body = || serde_json::json!({"model": "bad", "prompt": "hi"});
    // The configured fallback.
    let (_, attempt) = r
        .text_completion("bad", body(), None)
        .await
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(attempt.model_group, "good");
    assert_eq!(attempt.fallbacks, 1);
    assert_eq!(attempt.retries, 1);
    // The request's own `fallbacks` win over the configured ones.
    let (_, attempt) = r
        .text_completion("bad", body(), Some(vec!["other".into()]))
        .await
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(attempt.model_group, "other");
    // `disable_fallbacks` (an empty list): the group's error.
    let (err, _) = r
        .text_completion("bad", body(), Some(Vec::new()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.status.as_u16(), 429);
}
