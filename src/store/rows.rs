//! Small helpers for reading and writing rows portably: JSON kept as text, booleans as 0/1.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;

pub fn json_text(v: &Value) -> String {
    v.to_string()
}

pub fn get_json(row: &AnyRow, col: &str) -> Result<Value, StoreError> {
    let s: Option<String> = row.try_get(col)?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null))
}

pub fn get_obj(row: &AnyRow, col: &str) -> Result<Value, StoreError> {
    Ok(match get_json(row, col)? {
        v @ Value::Object(_) => v,
        _ => Value::Object(Default::default()),
    })
}

pub fn get_list(row: &AnyRow, col: &str) -> Result<Vec<String>, StoreError> {
    Ok(match get_json(row, col)? {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    })
}

pub fn get_bool(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    let v: Option<i64> = row.try_get(col)?;
    Ok(v.unwrap_or(0) != 0)
}

pub fn list_text(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
