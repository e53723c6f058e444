//! Adapter-private wire details: the endpoint URL and the headers of a Messages call. The
//! Messages types themselves live in `types::anthropic`, because the inbound `/v1/messages`
//! route speaks the same format.

pub use crate::types::anthropic::*;

/// Client headers forwarded to Anthropic on every path (others are the gateway's business).
pub const FORWARDED_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// `{api_base}/v1/messages`, accepting a base given with or without `/v1` or the full path
/// (LiteLLM's own default is the full `https://api.anthropic.com/v1/messages`).
pub fn messages_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/messages") {
        base.to_owned()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_from_any_base_form() {
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
            "https://api.anthropic.com/v1/messages",
        ] {
            assert_eq!(messages_url(base), "https://api.anthropic.com/v1/messages");
        }
    }
}
