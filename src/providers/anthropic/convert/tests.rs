//! Data-driven cases for `to_wire` and `from_wire` (files under `testdata/`).

use serde_json::Value;

use super::*;
use crate::providers::anthropic::testdata::{check_dir, error_value};

#[test]
fn to_wire_cases() {
    check_dir("to_wire", |case| {
        let req: ChatRequest = serde_json::from_value(case["input"].clone()).unwrap();
        let opts = Options {
            default_max_tokens: case["default_max_tokens"]
                .as_u64()
                .unwrap_or(DEFAULT_MAX_TOKENS),
            drop_params: case["drop_params"].as_bool().unwrap_or(false),
        };
        match to_wire(&req, &opts) {
            Ok(w) => {
                let mut v = serde_json::to_value(&w.body).unwrap();
                if w.json_tool {
                    v["__json_tool"] = Value::Bool(true);
                }
                v
            }
            Err(e) => error_value(&e),
        }
    });
}

#[test]
fn from_wire_cases() {
    check_dir("from_wire", |case| {
        let resp: MessagesResponse = serde_json::from_value(case["input"].clone()).unwrap();
        let json_tool = case["json_tool"].as_bool().unwrap_or(false);
        serde_json::to_value(from_wire(resp, json_tool, 1700000000)).unwrap()
    });
}

#[test]
fn adaptive_thinking_from_version_4_6() {
    for (model, adaptive) in [
        ("claude-opus-4-6", true),
        ("claude-sonnet-4-6", true),
        ("claude-opus-4-7", true),
        ("claude-opus-5-5", true),
        ("claude-mythos-preview", true),
        ("claude-sonnet-4-5-20250929", false),
        ("claude-opus-4-1-20250805", false),
        ("claude-opus-4-20250514", false),
        ("claude-3-7-sonnet-20250219", false),
        ("claude-tool-model", false),
    ] {
        assert_eq!(supports_adaptive_thinking(model), adaptive, "{model}");
    }
}
