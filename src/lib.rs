//! Tollgate: a LiteLLM-compatible LLM gateway.
//!
//! `app` wires the layers together; `server` is the HTTP surface; `router` picks deployments;
//! `providers` translate to each upstream; `auth` admits callers; `spend` prices and records
//! calls; `store` persists keys and spend.

// `ApiError` is deliberately a plain value (status, message, headers) returned by every layer.

pub mod admin_cli;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod event_loop;
pub mod mock_upstream;
pub mod observe;
pub mod openclaw;
pub mod providers;
pub mod router;
pub mod server;
pub mod spend;
pub mod state;
pub mod store;
pub mod types;

/// The hash map of the request path's in-memory lookups (keys, teams, counters, model groups):
/// foldhash, seeded per process, costs a fraction of std's SipHash on the short string keys
/// hashed several times per call.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
