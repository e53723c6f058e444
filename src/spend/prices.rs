//! Model prices and the cost of a call.

use serde_json::Value;

use crate::config::Deployment;
use crate::types::Usage;

/// Per-token prices of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
}

#[derive(Debug, Default)]
pub struct PriceTable {}

impl PriceTable {
    pub fn new() -> Self {
        PriceTable {}
    }

    /// The price for a deployment: its own custom prices, else the table.
    pub fn price_for(&self, dep: &Deployment, _model: &str) -> Option<Price> {
        let get = |k: &str| {
            dep.litellm_params
                .get(k)
                .or_else(|| dep.model_info.get(k))
                .and_then(as_f64)
        };
        Some(Price {
            input: get("input_cost_per_token")?,
            output: get("output_cost_per_token").unwrap_or(0.0),
            cache_read: get("cache_read_input_token_cost"),
            cache_write: get("cache_creation_input_token_cost"),
            reasoning: get("output_cost_per_reasoning_token"),
        })
    }

    /// Adds the price-table facts about a deployment's model to its `model_info`.
    pub fn enrich_model_info(&self, dep: &Deployment, info: &mut serde_json::Map<String, Value>) {
        if let Some(p) = self.price_for(dep, &dep.upstream_model) {
            info.entry("input_cost_per_token").or_insert(p.input.into());
            info.entry("output_cost_per_token")
                .or_insert(p.output.into());
        }
    }

    /// Cost in USD of a call's usage.
    pub fn cost(&self, dep: &Deployment, model: &str, usage: &Usage) -> f64 {
        let Some(p) = self.price_for(dep, model) else {
            return 0.0;
        };
        let cached = usage.cached_tokens();
        let uncached = usage.prompt_tokens.saturating_sub(cached);
        uncached as f64 * p.input
            + cached as f64 * p.cache_read.unwrap_or(p.input)
            + usage.cache_creation_tokens() as f64 * p.cache_write.unwrap_or(p.input)
            + usage.completion_tokens as f64 * p.output
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
