//! Observability: Prometheus metrics with LiteLLM's names, log callbacks (`generic_api`) and
//! OpenTelemetry spans over OTLP/HTTP (`otel`).
//!
//! **Architecture Invariant:** nothing here sees a raw API key: events carry the key's hash,
//! and the request path only touches atomics.

pub mod callbacks;
pub mod metrics;
pub mod otel;
