//! [`RawJson`]: a JSON value kept as the text it arrived in.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value the gateway passes on without looking inside: a tool's JSON schema
/// (`function.parameters`, Anthropic's `input_schema`). Kept as its text, it is checked once
/// when the request is read and then written out, cloned and dropped as one string. As a
/// `serde_json::Value` tree the 14 schemas of an OpenClaw request cost ~500 k instructions a
/// call: a map node per key to build, clone and free, and every description re-escaped byte by
/// byte on the way out (docs/PERFORMANCE.md).
///
/// The text is the client's, whitespace included: the upstream receives the schema as it was
/// sent, and the prompt-size estimate (four characters a token, rough either way) counts a
/// pretty-printed schema a little higher than a compact one. Dropping the whitespace on read
/// was measured: serde_json checks a `RawValue` made from new text again, ~250 k instructions
/// a call for OpenClaw's tools sent with Python's default spacing. Unlike a `Value`, a
/// `\uXXXX` escape inside a string is passed on unchecked, for the upstream to judge.
///
/// Read only through serde_json (its `Deserializer`, or `from_value`): serde's buffering for
/// `#[serde(untagged)]` enums and for fields caught by `#[serde(flatten)]` cannot carry a
/// `RawValue`. Named fields of a struct with a flattened `extra` map are read directly, so the
/// request types are fine; a wrapper that buffered a whole request would not be.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text, as it arrived (whitespace included).
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value as a tree (to compare two schemas).
    fn to_value(&self) -> Value {
        // The text was valid JSON when it was read or written.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// A schema the gateway builds itself.
    pub fn from_value(v: &Value) -> Self {
        // Printing a `Value` cannot fail: its keys are strings and its numbers finite.
        RawJson(
            serde_json::value::to_raw_value(v).unwrap_or_else(|_| {
                RawValue::from_string("null".to_owned()).expect("null is JSON")
            }),
        )
    }
}

/// Equal when the values are: `{"a": 1}` and `{ "a":1 }` are the same schema.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passes_the_text_through_and_reads_as_a_value() {
        let text = r#"{"type":"object","properties":{"q":{"type":"string","description":"a \"quoted\"\nline"}}}"#;
        let raw: RawJson = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), text);
        assert_eq!(raw.to_value()["properties"]["q"]["type"], "string");
        assert_eq!(
            raw,
            RawJson::from_value(
                &json!({"properties": {"q": {"type": "string", "description": "a \"quoted\"\nline"}}, "type": "object"})
            )
        );
        // Inside another value, through serde_json's Value (de)serializers too.
        let v = serde_json::to_value(&raw).unwrap();
        assert_eq!(v, raw.to_value());
        let back: RawJson = serde_json::from_value(v).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn refuses_text_that_is_not_json() {
        assert!(serde_json::from_str::<RawJson>(r#"{"a": }"#).is_err());
    }
}
