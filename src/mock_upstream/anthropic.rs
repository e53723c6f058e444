//! The mock's Anthropic Messages endpoint (minimal until the Anthropic adapter's tests extend it).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{MockState, REPLY, prompt_tokens};

pub async fn messages(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.record("/v1/messages", &headers, &req);
    Json(json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": req["model"],
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": prompt_tokens(&req), "output_tokens": 7},
    }))
    .into_response()
}
