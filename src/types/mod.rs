//! Canonical request and response types: OpenAI Chat Completions, as the gateway sees them.
//!
//! Every provider adapter translates to and from these. Each struct keeps the fields it does not
//! name in a flattened `extra` map, so nothing a client sends is silently dropped.

pub mod anthropic;
pub mod openai;
pub mod sse;

pub use openai::*;
