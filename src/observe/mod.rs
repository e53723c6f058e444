//! Observability: Prometheus metrics with LiteLLM's names, and log callbacks (`generic_api`).
//!
//! **Architecture Invariant:** nothing here sees a raw API key: events carry the key's hash,
//! and the request path only touches atomics.

pub mod callbacks;
pub mod metrics;
