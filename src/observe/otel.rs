//! OpenTelemetry traces over OTLP/HTTP (JSON encoding): `callbacks: ["otel"]` exports one span
//! per request, named and attributed after the GenAI semantic conventions
//! (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, …), batched by the callback machinery.
//!
//! Configuration, as LiteLLM reads it: `OTEL_EXPORTER` (`otlp_http`; gRPC is not supported),
//! `OTEL_ENDPOINT` (the full traces URL), else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
//! `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; headers from `OTEL_HEADERS` or
//! `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`); `OTEL_SERVICE_NAME` (default `tollgate`).

use rand::RngCore;
use serde_json::{Value, json};

use super::callbacks::{Destination, flush_every, parse_headers};
use crate::config::Config;
use crate::spend::SpendEvent;

/// The OTLP destination, or `None` (with a warning) when it is not usable.
pub fn destination(cfg: &Config) -> Option<Destination> {
    let exporter = cfg
        .env
        .get("OTEL_EXPORTER")
        .unwrap_or_else(|| "otlp_http".into());
    if exporter != "otlp_http" {
        tracing::warn!(
            "callbacks: otel with OTEL_EXPORTER={exporter} is not supported (only otlp_http); not exporting"
        );
        return None;
    }
    let endpoint = cfg
        .env
        .get("OTEL_ENDPOINT")
        .or_else(|| cfg.env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| {
            cfg.env
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
        });
    let Some(endpoint) = endpoint else {
        tracing::warn!("callbacks: otel is configured but OTEL_ENDPOINT is not set; not exporting");
        return None;
    };
    let headers = parse_headers(
        &cfg.env
            .get("OTEL_HEADERS")
            .or_else(|| cfg.env.get("OTEL_EXPORTER_OTLP_HEADERS"))
            .unwrap_or_default(),
    );
    let service = cfg
        .env
        .get("OTEL_SERVICE_NAME")
        .unwrap_or_else(|| "tollgate".into());
    Some(Destination {
        endpoint,
        headers,
        every: flush_every(cfg, "OTEL_FLUSH_INTERVAL"),
        encode: span,
        wrap: Box::new(move |spans| export_request(&service, spans)),
    })
}

/// An OTLP `ExportTraceServiceRequest` (JSON) carrying these spans.
pub fn export_request(service: &str, spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            attr("service.name", service),
            attr("service.version", env!("CARGO_PKG_VERSION")),
        ]},
        "scopeSpans": [{
            "scope": {"name": "tollgate", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans,
        }],
    }]})
}

fn attr(key: &str, v: impl Into<Value>) -> Value {
    let v: Value = v.into();
    let value = match &v {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64()}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

fn hex_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn nanos(ms: i64) -> String {
    (ms.max(0) as u128 * 1_000_000).to_string()
}

/// The GenAI operation of a LiteLLM call type.
fn operation(call_type: &str) -> &'static str {
    match call_type {
        "aembedding" | "embedding" => "embeddings",
        "atext_completion" | "text_completion" => "text_completion",
        _ => "chat",
    }
}

/// One request as an OTLP span (kind CLIENT), attributes per the GenAI conventions.
pub fn span(ev: &SpendEvent) -> Value {
    let op = operation(&ev.call_type);
    let mut attrs = vec![
        attr("gen_ai.operation.name", op),
        attr("gen_ai.provider.name", ev.provider.as_str()),
        attr("gen_ai.system", ev.provider.as_str()),
        attr("gen_ai.request.model", ev.model_group.as_str()),
        attr("gen_ai.response.model", ev.model.as_str()),
        attr("gen_ai.response.id", ev.request_id.as_str()),
        attr("gen_ai.usage.input_tokens", ev.prompt_tokens),
        attr("gen_ai.usage.output_tokens", ev.completion_tokens),
        attr("gen_ai.usage.cache_read.input_tokens", ev.cached_tokens),
        attr("gen_ai.usage.reasoning.output_tokens", ev.reasoning_tokens),
        attr("litellm.call_id", ev.call_id.as_str()),
        attr("litellm.response_cost", ev.spend),
        attr("litellm.model_id", ev.model_id.as_str()),
        attr("litellm.api_base", ev.api_base.as_str()),
        attr("litellm.user_api_key_hash", ev.api_key.as_str()),
    ];
    for (k, v) in [
        ("litellm.key_alias", &ev.key_alias),
        ("litellm.team_id", &ev.team_id),
        ("enduser.id", &ev.end_user),
        ("litellm.user_id", &ev.user_id),
    ] {
        if let Some(v) = v {
            attrs.push(attr(k, v.as_str()));
        }
    }
    let failed = ev.status != "success";
    let mut status = json!({"code": 1});
    if failed {
        let class = ev
            .error
            .as_ref()
            .and_then(|e| e.get("error_class"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        attrs.push(attr("error.type", class));
        let msg = ev
            .error
            .as_ref()
            .and_then(|e| e.get("error_message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        status = json!({"code": 2, "message": msg});
    }
    let mut events = Vec::new();
    if let Some(first) = ev.completion_start_ms {
        events.push(json!({"name": "gen_ai.first_token", "timeUnixNano": nanos(first)}));
    }
    json!({
        "traceId": hex_id(16),
        "spanId": hex_id(8),
        "name": format!("{op} {}", ev.model_group),
        "kind": 3,
        "startTimeUnixNano": nanos(ev.start_ms),
        "endTimeUnixNano": nanos(ev.end_ms.max(ev.start_ms)),
        "attributes": attrs,
        "events": events,
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_follow_the_genai_conventions() {
        let ev = SpendEvent {
            request_id: "chatcmpl-1".into(),
            call_type: "acompletion".into(),
            model_group: "gpt-4o".into(),
            model: "gpt-4o-2024-08-06".into(),
            provider: "openai".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_000_250,
            status: "success".into(),
            ..Default::default()
        };
        let s = span(&ev);
        assert_eq!(s["name"], "chat gpt-4o");
        assert_eq!(s["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        let attrs = s["attributes"].as_array().unwrap();
        let get = |k: &str| attrs.iter().find(|a| a["key"] == k).unwrap()["value"].clone();
        assert_eq!(get("gen_ai.request.model")["stringValue"], "gpt-4o");
        assert_eq!(get("gen_ai.usage.input_tokens")["intValue"], "10");
        let req = export_request("svc", vec![s]);
        assert_eq!(
            req["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
