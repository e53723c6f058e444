//! `tollgate openclaw-config`: the OpenClaw configuration block (`models.providers.litellm` and
//! `agents.defaults.model.primary`) for the gateway's model groups, so users never hand-copy
//! context windows and output limits.
//!
//! The facts about each model come from one function, [`facts`]: the deployment's `model_info`
//! overrides first, then the price table (`PriceTable::model_facts`), the same facts
//! `GET /v1/model/info` shows (`PriceTable::enrich_model_info`).

use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, Deployment};
use crate::spend::prices::PriceTable;

/// What OpenClaw needs to know about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFacts {
    pub context_window: u64,
    pub max_tokens: u64,
    pub reasoning: bool,
    pub vision: bool,
}

/// Used when neither `model_info` nor the price table knows a model.
pub const UNKNOWN_MODEL: ModelFacts = ModelFacts {
    context_window: 128_000,
    max_tokens: 8_192,
    reasoning: false,
    vision: false,
};

/// The facts for a deployment: `model_info.max_input_tokens` / `max_output_tokens` (or
/// `max_tokens`) / `supports_vision` / `supports_reasoning` override the table's.
pub fn facts(prices: &PriceTable, dep: &Deployment) -> ModelFacts {
    let base = table_facts(prices, dep).unwrap_or(UNKNOWN_MODEL);
    let info = &dep.model_info;
    let num = |k: &str| info.get(k).and_then(as_u64);
    let flag = |k: &str| info.get(k).and_then(as_bool);
    ModelFacts {
        context_window: num("max_input_tokens").unwrap_or(base.context_window),
        max_tokens: num("max_output_tokens")
            .or_else(|| num("max_tokens"))
            .unwrap_or(base.max_tokens),
        reasoning: flag("supports_reasoning").unwrap_or(base.reasoning),
        vision: flag("supports_vision").unwrap_or(base.vision),
    }
}

/// The price table's facts for the deployment's model (same lookup as pricing:
/// `model_info.base_model`, then `provider/model`, then the bare model). Limits the table
/// does not give fall back to [`UNKNOWN_MODEL`]'s.
fn table_facts(prices: &PriceTable, dep: &Deployment) -> Option<ModelFacts> {
    let f = prices.model_facts(Some(dep), &dep.upstream_model)?;
    Some(ModelFacts {
        context_window: f.context_window.unwrap_or(UNKNOWN_MODEL.context_window),
        max_tokens: f.max_output_tokens.unwrap_or(UNKNOWN_MODEL.max_tokens),
        reasoning: f.supports_reasoning,
        vision: f.supports_vision,
    })
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `openclaw-config`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway's URL as OpenClaw reaches it.
    pub base_url: String,
    /// A literal key; `None` writes `${LITELLM_API_KEY}`.
    pub key: Option<String>,
    /// Model groups to list, in this order (the first is primary); empty = every group.
    pub models: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenClawModel {
    id: String,
    name: String,
    reasoning: bool,
    input: Vec<&'static str>,
    context_window: u64,
    max_tokens: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    base_url: String,
    api_key: String,
    api: &'static str,
    models: Vec<OpenClawModel>,
}

/// The printed block, fields in the order OpenClaw's docs show them.
#[derive(Serialize)]
pub struct Block {
    models: Models,
    agents: Agents,
}

#[derive(Serialize)]
struct Models {
    providers: Providers,
}

#[derive(Serialize)]
struct Providers {
    litellm: Provider,
}

#[derive(Serialize)]
struct Agents {
    defaults: Defaults,
}

#[derive(Serialize)]
struct Defaults {
    model: Primary,
}

#[derive(Serialize)]
struct Primary {
    primary: String,
}

/// The OpenClaw config block; serialized as JSON, which OpenClaw's JSON5 reader takes as is.
pub fn config_block(cfg: &Config, prices: &PriceTable, opts: &Options) -> Result<Block, String> {
    let mut groups: Vec<&Deployment> = Vec::new();
    for d in cfg.deployments.iter().filter(|d| !d.is_wildcard()) {
        if !groups.iter().any(|g| g.model_name == d.model_name) {
            groups.push(d);
        }
    }
    let chosen: Vec<&Deployment> = if opts.models.is_empty() {
        groups.clone()
    } else {
        let mut out = Vec::new();
        for m in &opts.models {
            let Some(d) = groups.iter().find(|d| &d.model_name == m) else {
                let names: Vec<&str> = groups.iter().map(|d| d.model_name.as_str()).collect();
                return Err(format!(
                    "--models: {m} is not a model group in the config (have: {})",
                    names.join(", ")
                ));
            };
            out.push(*d);
        }
        out
    };
    let Some(primary) = chosen.first() else {
        return Err("the config has no model groups to offer OpenClaw".into());
    };
    let models = chosen
        .iter()
        .map(|d| {
            let f = facts(prices, d);
            OpenClawModel {
                id: d.model_name.clone(),
                name: display_name(&d.model_name),
                reasoning: f.reasoning,
                input: if f.vision {
                    vec!["text", "image"]
                } else {
                    vec!["text"]
                },
                context_window: f.context_window,
                max_tokens: f.max_tokens,
            }
        })
        .collect();
    let provider = Provider {
        base_url: opts.base_url.trim_end_matches('/').to_owned(),
        api_key: opts
            .key
            .clone()
            .unwrap_or_else(|| "${LITELLM_API_KEY}".to_owned()),
        api: "openai-completions",
        models,
    };
    Ok(Block {
        models: Models {
            providers: Providers { litellm: provider },
        },
        agents: Agents {
            defaults: Defaults {
                model: Primary {
                    primary: format!("litellm/{}", primary.model_name),
                },
            },
        },
    })
}

/// `claude-opus-4-6` → `Claude Opus 4.6`, `gpt-4o-mini` → `GPT-4o Mini`.
pub fn display_name(id: &str) -> String {
    let base = id.rsplit('/').next().unwrap_or(id);
    let mut words: Vec<String> = Vec::new();
    let mut prev_numeric = false;
    for part in base.split(['-', '_']).filter(|p| !p.is_empty()) {
        let numeric = part.chars().all(|c| c.is_ascii_digit());
        if numeric
            && prev_numeric
            && let Some(last) = words.last_mut()
        {
            last.push('.');
            last.push_str(part);
            continue;
        }
        prev_numeric = numeric;
        if part.eq_ignore_ascii_case("gpt") {
            words.push("GPT".into());
            continue;
        }
        if words.last().is_some_and(|w| w == "GPT") {
            if let Some(last) = words.last_mut() {
                last.push('-');
                last.push_str(part);
            }
            continue;
        }
        let mut c = part.chars();
        words.push(match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => String::new(),
        });
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, parse};

    fn config(yaml: &str) -> Config {
        parse(yaml, Env::from_map(Vec::<(String, String)>::new())).expect("config")
    }

    const TWO: &str = r#"
model_list:
  - model_name: claude-opus-4-6
    litellm_params: {model: openai/claude-opus-4-6, api_base: "http://127.0.0.1:1/v1"}
    model_info: {max_input_tokens: 200000, max_output_tokens: 64000, supports_vision: true, supports_reasoning: true}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:1/v1"}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-2, api_base: "http://127.0.0.1:1/v1"}
  - model_name: "anthropic/*"
    litellm_params: {model: "anthropic/*"}
"#;

    fn opts(models: &[&str], key: Option<&str>) -> Options {
        Options {
            base_url: "http://localhost:4000/".into(),
            key: key.map(str::to_owned),
            models: models.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn block_lists_each_group_once_with_model_info_facts() {
        let block = config_block(&config(TWO), &PriceTable::new(), &opts(&[], None)).unwrap();
        let text = serde_json::to_string(&block).unwrap();
        assert!(
            text.starts_with(r#"{"models":{"providers":{"litellm":{"baseUrl":"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let p = &v["models"]["providers"]["litellm"];
        assert_eq!(p["baseUrl"], "http://localhost:4000");
        assert_eq!(p["apiKey"], "${LITELLM_API_KEY}");
        assert_eq!(p["api"], "openai-completions");
        let models = p["models"].as_array().unwrap();
        assert_eq!(
            models.len(),
            2,
            "one entry per group, no wildcard: {models:?}"
        );
        assert_eq!(
            models[0],
            serde_json::json!({"id": "claude-opus-4-6", "name": "Claude Opus 4.6", "reasoning": true,
                "input": ["text", "image"], "contextWindow": 200000, "maxTokens": 64000})
        );
        assert_eq!(models[1]["id"], "gpt-4o");
        assert_eq!(models[1]["contextWindow"], 128_000, "from the price table");
        assert_eq!(models[1]["maxTokens"], 16_384, "from the price table");
        assert_eq!(
            v["agents"]["defaults"]["model"]["primary"],
            "litellm/claude-opus-4-6"
        );
    }

    #[test]
    fn models_flag_orders_and_filters_and_key_is_literal() {
        let v = serde_json::to_value(
            config_block(
                &config(TWO),
                &PriceTable::new(),
                &opts(&["gpt-4o"], Some("sk-abc")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["models"]["providers"]["litellm"]["apiKey"], "sk-abc");
        assert_eq!(
            v["models"]["providers"]["litellm"]["models"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            v["agents"]["defaults"]["model"]["primary"],
            "litellm/gpt-4o"
        );
        let Err(err) = config_block(&config(TWO), &PriceTable::new(), &opts(&["nope"], None))
        else {
            panic!("an unknown group is an error")
        };
        assert!(err.contains("claude-opus-4-6, gpt-4o"), "{err}");
    }

    /// docs/openclaw.md's quick-start config: no `model_info`, so every fact is the table's.
    const TABLE: &str = r#"
model_list:
  - model_name: claude-opus-4-6
    litellm_params: {model: anthropic/claude-opus-4-6, api_key: k}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: claude-opus-4-6-tool
    litellm_params: {model: anthropic/claude-opus-4-6-tool, api_key: k}
    model_info: {base_model: claude-opus-4-6}
  - model_name: pinned
    litellm_params: {model: anthropic/claude-opus-4-6, api_key: k}
    model_info: {max_input_tokens: "200000", max_output_tokens: 64000}
  - model_name: unknown
    litellm_params: {model: openai/no-such-model-xyz, api_key: k}
"#;

    #[test]
    fn facts_come_from_the_price_table() {
        let cfg = config(TABLE);
        let t = PriceTable::new();
        let f = |name: &str| {
            let d = cfg
                .deployments
                .iter()
                .find(|d| d.model_name == name)
                .unwrap();
            facts(&t, d)
        };
        let opus = ModelFacts {
            context_window: 1_000_000,
            max_tokens: 128_000,
            reasoning: true,
            vision: true,
        };
        assert_eq!(f("claude-opus-4-6"), opus);
        assert_eq!(f("claude-opus-4-6-tool"), opus, "model_info.base_model");
        assert_eq!(
            f("gpt-4o"),
            ModelFacts {
                context_window: 128_000,
                max_tokens: 16_384,
                reasoning: false,
                vision: true,
            }
        );
        assert_eq!(
            f("pinned"),
            ModelFacts {
                context_window: 200_000,
                max_tokens: 64_000,
                ..opus
            },
            "model_info wins, strings included"
        );
        assert_eq!(f("unknown"), UNKNOWN_MODEL);
    }

    /// `GET /v1/model/info` shows what `openclaw-config` prints.
    #[test]
    fn model_info_shows_the_same_facts() {
        let cfg = config(TABLE);
        let t = PriceTable::new();
        for d in cfg.deployments.iter().filter(|d| d.model_name != "pinned") {
            let mut info = d.model_info.clone();
            t.enrich_model_info(d, &mut info);
            if d.model_name == "unknown" {
                assert!(info.get("max_input_tokens").is_none(), "{info:?}");
                continue;
            }
            let f = facts(&t, d);
            let shown = (
                info["max_input_tokens"].as_u64(),
                info["max_output_tokens"].as_u64(),
                info["supports_reasoning"].as_bool(),
                info["supports_vision"].as_bool(),
            );
            assert_eq!(
                shown,
                (
                    Some(f.context_window),
                    Some(f.max_tokens),
                    Some(f.reasoning),
                    Some(f.vision)
                ),
                "{}: {info:?}",
                d.model_name
            );
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("claude-opus-4-6"), "Claude Opus 4.6");
        assert_eq!(display_name("gpt-4o"), "GPT-4o");
        assert_eq!(display_name("gpt-4o-mini"), "GPT-4o Mini");
        assert_eq!(display_name("openai/o3"), "O3");
    }
}
