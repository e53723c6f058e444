//! Data-driven translation tests: each JSON file under `testdata/<dir>/` holds an `input` and
//! the `expected` output. `UPDATE_EXPECT=1 cargo test` rewrites `expected` from what the code
//! does now (review the diff before committing it).

use std::path::PathBuf;

use serde_json::Value;

/// Runs `f` on every case in `testdata/<dir>` and compares with its `expected`.
pub fn check_dir(dir: &str, f: impl Fn(&Value) -> Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/providers/anthropic/testdata")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", root.display());
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut case: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = f(&case);
        if case.get("expected") != Some(&got) {
            if update {
                case["expected"] = got;
                let mut s = serde_json::to_string_pretty(&case).unwrap();
                s.push('\n');
                std::fs::write(&path, s).unwrap();
            } else {
                failures.push(format!(
                    "{}:\n  expected: {}\n  got:      {}",
                    path.display(),
                    case.get("expected").cloned().unwrap_or(Value::Null),
                    got
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An error as a case expects it.
pub fn error_value(e: &crate::error::ApiError) -> Value {
    serde_json::json!({"error": {"status": e.status.as_u16(), "type": e.kind, "message": e.message, "param": e.param}})
}
