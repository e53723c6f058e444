//! Data-driven cases for the event-stream mapper (files under `testdata/stream/`).

use serde_json::{Value, json};

use super::*;
use crate::providers::anthropic::testdata::{check_dir, error_value};

/// Feeds the case's `events` (each `{"event": name, "data": {...}}` or just the data) and
/// collects the chunks, an error ending the list.
#[test]
fn stream_cases() {
    check_dir("stream", |case| {
        let mut m = ChunkMapper::new(
            "claude-x",
            case["json_tool"].as_bool().unwrap_or(false),
            1700000000,
        );
        let mut out = Vec::new();
        for ev in case["events"].as_array().unwrap() {
            let data = ev.get("data").unwrap_or(ev);
            let bytes = serde_json::to_vec(data).unwrap();
            let name = ev.get("event").and_then(Value::as_str);
            match parse_event(name, &bytes).and_then(|e| match e {
                Some(e) => m.on_event(e, "anthropic"),
                None => Ok(Vec::new()),
            }) {
                Ok(chunks) => out.extend(chunks.iter().map(|c| serde_json::to_value(c).unwrap())),
                Err(e) => {
                    out.push(error_value(&e));
                    break;
                }
            }
        }
        json!({"chunks": out, "finished": m.finished()})
    });
}
