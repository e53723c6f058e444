//! Health routes: liveliness and readiness (unauthenticated) and `/health`, which probes every
//! deployment with a real call.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::state::AppState;

pub async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

pub async fn readiness(State(st): State<AppState>) -> Json<Value> {
    let db = match &st.store {
        Some(s) if s.ping().await => "connected",
        Some(_) => "disconnected",
        None => "Not connected",
    };
    let callbacks: Vec<&String> = st
        .config
        .litellm
        .callbacks
        .iter()
        .chain(&st.config.litellm.success_callback)
        .collect();
    Json(json!({
        "status": if db == "disconnected" { "unhealthy" } else { "healthy" },
        "db": db,
        "cache": st.config.redis.as_ref().map(|_| "redis"),
        "litellm_version": env!("CARGO_PKG_VERSION"),
        "tollgate_version": env!("CARGO_PKG_VERSION"),
        "success_callbacks": callbacks,
        "last_updated": chrono::Utc::now().to_rfc3339(),
    }))
}

pub async fn health(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    st.auth.authenticate(&headers).await?;
    let probes = st
        .router
        .deployments()
        .filter(|d| !d.config.is_wildcard())
        .map(|d| {
            let d = d.clone();
            async move {
                let entry = json!({
                    "model": d.config.litellm_model,
                    "model_name": d.config.model_name,
                    "model_id": d.config.id,
                    "api_base": d.api_base(),
                });
                let result =
                    tokio::time::timeout(std::time::Duration::from_secs(60), d.health_probe())
                        .await;
                match result {
                    Ok(Ok(())) => (true, entry),
                    Ok(Err(e)) => {
                        let mut e2 = entry;
                        e2["error"] = Value::String(e.message);
                        (false, e2)
                    }
                    Err(_) => {
                        let mut e2 = entry;
                        e2["error"] = Value::String("health check timed out after 60 s".into());
                        (false, e2)
                    }
                }
            }
        });
    let results = futures::future::join_all(probes).await;
    let (healthy, unhealthy): (Vec<_>, Vec<_>) = results.into_iter().partition(|(ok, _)| *ok);
    let healthy: Vec<Value> = healthy.into_iter().map(|(_, v)| v).collect();
    let unhealthy: Vec<Value> = unhealthy.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    })))
}
