//! Canonical request and response types: OpenAI Chat Completions, as the gateway sees them.
//!
//! Every provider adapter translates to and from these. Each struct keeps the fields it does not
//! name in a flattened `extra` map, so nothing a client sends is silently dropped.

pub mod anthropic;
pub mod number;
pub mod openai;
pub mod raw;
pub mod sse;

pub use openai::*;
pub use raw::RawJson;

use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// Reads "a string or an array of `T`" (message content in both APIs) in one pass.
///
/// What `#[serde(untagged)]` would do instead is copy the whole value into serde's buffer and
/// then try each variant against it: every message's text copied twice, on every request
/// (OpenClaw's system prompt alone is 50 KB).
pub(crate) fn text_or_items<'de, D, T>(d: D) -> Result<Result<String, Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct TextOrItems<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for TextOrItems<T> {
        type Value = Result<String, Vec<T>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an array of content parts")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Ok(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Ok(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Err)
        }
    }

    d.deserialize_any(TextOrItems(PhantomData))
}
