//! The one seam through which configuration reads environment variables.
//!
//! Tests build an [`Env`] from a map instead of mutating the process environment; the config's
//! `environment_variables` section is layered on top of the process values.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
    use_process: bool,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env {
            overlay: HashMap::new(),
            use_process: true,
        }
    }

    /// Only the given values (tests).
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            overlay: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            use_process: false,
        }
    }

    /// Values set by the config's `environment_variables` take precedence.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.overlay.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.overlay.get(key) {
            return Some(v.clone());
        }
        if self.use_process {
            std::env::var(key).ok().filter(|v| !v.is_empty())
        } else {
            None
        }
    }

    /// A boolean flag such as `JSON_LOGS=True`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key)
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("1" | "true" | "yes" | "on")
        )
    }
}
