//! Canonical (OpenAI Chat) ↔ Anthropic Messages, by direction: [`to_wire`] builds the Messages
//! request, [`from_wire`] turns the Messages answer into a chat completion.
//!
//! Nothing is dropped without a word: fields Anthropic has no use for are refused with a 400
//! naming them, or dropped when `drop_params` is on (`docs/anthropic.md` has the full table).

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::types::RawJson;
use crate::types::anthropic::{self as wire, Block, MessagesRequest, MessagesResponse, ToolDef};
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, FunctionCall, Message, ToolCall,
};

/// The answer length used when neither the request nor the deployment names one.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The tool a `response_format` becomes; its input is handed back as the message text.
pub const JSON_TOOL: &str = "json_tool_call";

/// Top-level fields the Messages API accepts as they are; passed through untouched.
const PASSED_THROUGH: &[&str] = &[
    "top_k",
    "thinking",
    "context_management",
    "output_config",
    "output_format",
    "container",
    "mcp_servers",
    "service_tier",
    "inference_geo",
];

/// Choices the caller (the adapter, from the deployment and the config) makes for a request.
#[derive(Debug, Clone)]
pub struct Options {
    /// `max_tokens` when the request has none. The hook for a price table's
    /// `max_output_tokens`; today the deployment's `max_tokens` or [`DEFAULT_MAX_TOKENS`].
    pub default_max_tokens: u64,
    /// Drop unsupported OpenAI parameters instead of refusing the request.
    pub drop_params: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_max_tokens: DEFAULT_MAX_TOKENS,
            drop_params: false,
        }
    }
}

/// A translated request and what the answer's translation must know about it.
#[derive(Debug, Clone)]
pub struct Wire {
    pub body: MessagesRequest,
    /// `response_format` was turned into the forced [`JSON_TOOL`] call.
    pub json_tool: bool,
}

/// OpenAI Chat request → Anthropic Messages request.
pub fn to_wire(req: &ChatRequest, opts: &Options) -> Result<Wire, ApiError> {
    let mut body = MessagesRequest {
        model: req.model.clone(),
        ..MessagesRequest::default()
    };
    let drop_params = opts.drop_params || req.extra.get("drop_params") == Some(&Value::Bool(true));

    // Unknown top-level fields: pass what Anthropic takes, refuse (or drop) the rest.
    let mut unsupported: Vec<&str> = Vec::new();
    for (k, v) in &req.extra {
        match k.as_str() {
            "drop_params" | "mock_response" => {}
            "n" if v.as_u64() == Some(1) || v.is_null() => {}
            "top_k" => body.top_k = v.as_u64(),
            "thinking" => body.thinking = Some(v.clone()),
            k if PASSED_THROUGH.contains(&k) => {
                body.extra.insert(k.to_owned(), v.clone());
            }
            k => unsupported.push(k),
        }
    }
    if !unsupported.is_empty() && !drop_params {
        unsupported.sort_unstable();
        return Err(ApiError::bad_request(format!(
            "anthropic does not support parameters: {}, for model={}. To drop these, set `litellm.drop_params=True` (drop_params: true in litellm_settings or the request).",
            unsupported.join(", "),
            req.model
        ))
        .with_param(unsupported[0]));
    }

    let mut system: Vec<Block> = Vec::new();
    let mut turns: Vec<wire::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role.as_str() {
            "system" | "developer" => system.extend(system_blocks(m, i)?),
            "user" => push_turn(&mut turns, "user", user_blocks(m, i)?),
            "assistant" => push_turn(&mut turns, "assistant", assistant_blocks(m, i)?),
            "tool" | "function" => push_turn(&mut turns, "user", vec![tool_result(m, i)?]),
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: role \"{other}\" is not one Anthropic accepts (system, developer, user, assistant, tool)"
                ))
                .with_param(format!("messages[{i}].role")));
            }
        }
    }
    if turns.is_empty() {
        return Err(ApiError::bad_request(
            "messages must contain at least one user or assistant message besides the system prompt",
        )
        .with_param("messages"));
    }
    body.messages = turns;
    if !system.is_empty() {
        body.system = Some(wire::Content::Blocks(system));
    }

    let mut max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(opts.default_max_tokens);
    body.temperature = req.temperature;
    body.top_p = req.top_p;
    body.stop_sequences = match &req.stop {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(_) => {
            return Err(
                ApiError::bad_request("stop must be a string or a list of strings")
                    .with_param("stop"),
            );
        }
    };
    if let Some(u) = &req.user {
        body.metadata = Some(json!({"user_id": u}));
    }

    // reasoning_effort → thinking, unless `thinking` is given as such: adaptive thinking with
    // `output_config.effort` on models that have it (4.6 and later), else a token budget.
    if body.thinking.is_none()
        && let Some(effort) = req.reasoning_effort.as_deref()
    {
        let (budget, level) = match effort {
            "none" | "disable" => (None, ""),
            "minimal" | "low" => (Some(1024), "low"),
            "medium" => (Some(2048), "medium"),
            "high" => (Some(4096), "high"),
            "xhigh" | "max" => (Some(8192), "max"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "reasoning_effort \"{other}\" is not one of none, minimal, low, medium, high, xhigh"
                ))
                .with_param("reasoning_effort"));
            }
        };
        if let Some(b) = budget {
            if supports_adaptive_thinking(&req.model) {
                body.thinking = Some(json!({"type": "adaptive"}));
                let oc = body
                    .extra
                    .entry("output_config")
                    .or_insert_with(|| json!({}));
                if let Some(o) = oc.as_object_mut() {
                    o.entry("effort").or_insert_with(|| json!(level));
                }
            } else {
                body.thinking = Some(json!({"type": "enabled", "budget_tokens": b}));
            }
        }
    }
    // The API wants max_tokens above the thinking budget.
    if let Some(b) = body
        .thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
        && max_tokens <= b
    {
        max_tokens = b + opts.default_max_tokens;
    }
    body.max_tokens = Some(max_tokens);

    // Tools and tool_choice.
    let mut tools: Vec<ToolDef> = Vec::new();
    for (i, t) in req.tools.iter().flat_map(|t| t.iter()).enumerate() {
        tools.push(tool_def(t, i)?);
    }
    let mut tool_choice = match &req.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" | "any" => Some(json!({"type": "any"})),
            other => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice \"{other}\" is not auto, none, required or a named function"
                ))
                .with_param("tool_choice"));
            }
        },
        Some(Value::Object(o)) => {
            if let Some(name) = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(json!({"type": "tool", "name": name}))
            } else if o.get("type").and_then(Value::as_str).is_some() {
                // Already Anthropic-shaped ({"type":"any"}, {"type":"tool","name"}).
                Some(Value::Object(o.clone()))
            } else {
                return Err(ApiError::bad_request(
                    "tool_choice object must be {\"type\":\"function\",\"function\":{\"name\":...}}",
                )
                .with_param("tool_choice"));
            }
        }
        Some(_) => {
            return Err(
                ApiError::bad_request("tool_choice must be a string or an object")
                    .with_param("tool_choice"),
            );
        }
    };

    // response_format → a forced tool whose input is the JSON answer.
    let mut json_tool = false;
    if let Some(rf) = &req.response_format {
        let schema = match rf.get("type").and_then(Value::as_str) {
            Some("json_schema") => Some(
                rf.get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            ),
            Some("json_object") => Some(json!({"type": "object", "additionalProperties": true})),
            Some("text") | None => None,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "response_format type \"{other}\" is not text, json_object or json_schema"
                ))
                .with_param("response_format"));
            }
        };
        if let Some(schema) = schema {
            json_tool = true;
            tools.push(ToolDef {
                name: JSON_TOOL.into(),
                description: Some("Respond with a JSON object that matches this schema.".into()),
                input_schema: Some(RawJson::from_value(&schema)),
                ..ToolDef::default()
            });
            // With thinking on, the API refuses a forced tool; the model is then asked, not forced.
            tool_choice = Some(if body.thinking.is_some() {
                json!({"type": "auto"})
            } else {
                json!({"type": "tool", "name": JSON_TOOL})
            });
        }
    }
    if req.parallel_tool_calls == Some(false) && !tools.is_empty() {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if tc.get("type").and_then(Value::as_str) != Some("none") {
            tc["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if tools.is_empty() {
        if tool_choice
            .as_ref()
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "any" || t == "tool")
        {
            return Err(ApiError::bad_request(
                "tool_choice requires a tool call but the request declares no tools",
            )
            .with_param("tool_choice"));
        }
        // auto/none without tools mean the same as no tool_choice, which the API requires.
    } else {
        body.tools = Some(tools);
        body.tool_choice = tool_choice;
    }
    Ok(Wire { body, json_tool })
}

/// Appends blocks as a turn of `role`, merging with the previous turn of the same role (the
/// API wants user and assistant turns to alternate). In a user turn, tool results come first.
fn push_turn(turns: &mut Vec<wire::Message>, role: &str, blocks: Vec<Block>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut()
        && last.role == role
    {
        let mut all = std::mem::take(&mut last.content).into_blocks();
        all.extend(blocks);
        if role == "user" {
            let (mut results, rest): (Vec<Block>, Vec<Block>) =
                all.into_iter().partition(|b| b.kind == "tool_result");
            results.extend(rest);
            all = results;
        }
        last.content = wire::Content::Blocks(all);
        return;
    }
    turns.push(wire::Message {
        role: role.to_owned(),
        content: wire::Content::Blocks(blocks),
        extra: Map::new(),
    });
}

fn system_blocks(m: &Message, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    match &m.content {
        None => {}
        Some(Content::Text(s)) if !s.is_empty() => blocks.push(Block::text(s.clone())),
        Some(Content::Text(_)) => {}
        Some(Content::Parts(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                if p.kind != "text" {
                    return Err(ApiError::bad_request(format!(
                        "messages[{i}].content[{j}]: a system message may only hold text, not \"{}\"",
                        p.kind
                    ))
                    .with_param(format!("messages[{i}].content")));
                }
                let mut b = Block::text(p.text.clone().unwrap_or_default());
                b.cache_control = p.cache_control.clone();
                blocks.push(b);
            }
        }
    }
    apply_message_cache_control(m, &mut blocks);
    Ok(blocks)
}

/// LiteLLM lets `cache_control` sit on the message; it belongs on the message's last block.
fn apply_message_cache_control(m: &Message, blocks: &mut [Block]) {
    if let Some(cc) = m.extra.get("cache_control")
        && let Some(last) = blocks.last_mut()
        && last.cache_control.is_none()
    {
        last.cache_control = Some(cc.clone());
    }
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = content_blocks(m.content.as_ref(), i)?;
    apply_message_cache_control(m, &mut blocks);
    Ok(blocks)
}

/// Text, images and documents of a user (or tool) message.
fn content_blocks(content: Option<&Content>, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    match content {
        None => {}
        Some(Content::Text(s)) if !s.is_empty() => blocks.push(Block::text(s.clone())),
        Some(Content::Text(_)) => {}
        Some(Content::Parts(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                if let Some(b) = part_block(p, i, j)? {
                    blocks.push(b);
                }
            }
        }
    }
    Ok(blocks)
}

fn part_block(p: &ContentPart, i: usize, j: usize) -> Result<Option<Block>, ApiError> {
    let at = || format!("messages[{i}].content[{j}]");
    let mut block = match p.kind.as_str() {
        "text" => {
            let text = p.text.clone().unwrap_or_default();
            if text.is_empty() && p.cache_control.is_none() {
                return Ok(None);
            }
            Block::text(text)
        }
        "image_url" => {
            let url = p
                .image_url
                .as_ref()
                .map(|u| u.url.as_str())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{}: image_url.url is missing", at()))
                        .with_param(at())
                })?;
            media_block(url, &at())?
        }
        "file" => {
            let file = p.extra.get("file").cloned().unwrap_or(Value::Null);
            if let Some(data) = file.get("file_data").and_then(Value::as_str) {
                media_block(data, &at())?
            } else if let Some(id) = file.get("file_id").and_then(Value::as_str) {
                Block {
                    kind: "document".into(),
                    source: Some(json!({"type": "file", "file_id": id})),
                    ..Block::default()
                }
            } else {
                return Err(ApiError::bad_request(format!(
                    "{}: a file part needs file.file_data (a data URL) or file.file_id",
                    at()
                ))
                .with_param(at()));
            }
        }
        "input_audio" | "audio" => {
            return Err(ApiError::bad_request(format!(
                "{}: Anthropic models do not take audio input",
                at()
            ))
            .with_param(at()));
        }
        _ => {
            // An Anthropic-native block (`document`, `image` with `source`, `search_result` …)
            // written straight into OpenAI content: pass it on as it is.
            let v = serde_json::to_value(p).unwrap_or(Value::Null);
            return serde_json::from_value::<Block>(v).map(Some).map_err(|e| {
                ApiError::bad_request(format!("{}: unsupported content part: {e}", at()))
                    .with_param(at())
            });
        }
    };
    block.cache_control = p.cache_control.clone();
    Ok(Some(block))
}

/// An `image_url` / `file_data` URL → an `image` or `document` block.
fn media_block(url: &str, at: &str) -> Result<Block, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            ApiError::bad_request(format!("{at}: malformed data URL (no comma)")).with_param(at)
        })?;
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(ApiError::bad_request(format!(
                "{at}: only base64 data URLs are supported (data:<type>;base64,...)"
            ))
            .with_param(at));
        };
        let kind = if media_type.starts_with("image/") {
            "image"
        } else if media_type == "application/pdf" {
            "document"
        } else if media_type == "text/plain" {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{at}: text/plain data is not base64 UTF-8"))
                        .with_param(at)
                })?;
            return Ok(Block {
                kind: "document".into(),
                source: Some(json!({"type": "text", "media_type": "text/plain", "data": text})),
                ..Block::default()
            });
        } else {
            return Err(ApiError::bad_request(format!(
                "{at}: media type {media_type} is not supported by Anthropic (images, application/pdf, text/plain)"
            ))
            .with_param(at));
        };
        return Ok(Block {
            kind: kind.into(),
            source: Some(json!({"type": "base64", "media_type": media_type, "data": data})),
            ..Block::default()
        });
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let kind = if url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .to_ascii_lowercase()
            .ends_with(".pdf")
        {
            "document"
        } else {
            "image"
        };
        return Ok(Block {
            kind: kind.into(),
            source: Some(json!({"type": "url", "url": url})),
            ..Block::default()
        });
    }
    Err(
        ApiError::bad_request(format!("{at}: the URL must be a data: URL or http(s) URL"))
            .with_param(at),
    )
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    // Thinking first, as the model produced it; the signatures make the replay acceptable.
    for (j, tb) in m.thinking_blocks.iter().flatten().enumerate() {
        let b: Block = serde_json::from_value(tb.clone()).map_err(|e| {
            ApiError::bad_request(format!("messages[{i}].thinking_blocks[{j}]: {e}"))
                .with_param(format!("messages[{i}].thinking_blocks"))
        })?;
        blocks.push(b);
    }
    match &m.content {
        None => {}
        Some(Content::Text(s)) if !s.is_empty() => blocks.push(Block::text(s.clone())),
        Some(Content::Text(_)) => {}
        Some(Content::Parts(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                match p.kind.as_str() {
                    // A refusal in the history is plain text to the model.
                    "text" | "refusal" => {
                        let text = p
                            .text
                            .clone()
                            .or_else(|| {
                                p.extra
                                    .get("refusal")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                            })
                            .unwrap_or_default();
                        if !text.is_empty() {
                            let mut b = Block::text(text);
                            b.cache_control = p.cache_control.clone();
                            blocks.push(b);
                        }
                    }
                    _ => {
                        if let Some(b) = part_block(p, i, j)? {
                            blocks.push(b);
                        }
                    }
                }
            }
        }
    }
    for (j, tc) in m.tool_calls.iter().flatten().enumerate() {
        let f = tc.function.clone().unwrap_or_default();
        let name = f.name.unwrap_or_default();
        let args = f.arguments.unwrap_or_default();
        let input: Value = if args.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&args).map_err(|e| {
                ApiError::bad_request(format!(
                    "messages[{i}].tool_calls[{j}] ({name}): function.arguments is not valid JSON: {e}"
                ))
                .with_param(format!("messages[{i}].tool_calls[{j}].function.arguments"))
            })?
        };
        blocks.push(Block {
            kind: "tool_use".into(),
            id: Some(tc.id.clone().unwrap_or_else(|| format!("toolu_{i}_{j}"))),
            name: Some(name),
            input: Some(input),
            ..Block::default()
        });
    }
    apply_message_cache_control(m, &mut blocks);
    Ok(blocks)
}

fn tool_result(m: &Message, i: usize) -> Result<Block, ApiError> {
    let id = m.tool_call_id.clone().ok_or_else(|| {
        ApiError::bad_request(format!("messages[{i}]: a tool message needs tool_call_id"))
            .with_param(format!("messages[{i}].tool_call_id"))
    })?;
    let content = match &m.content {
        None => wire::Content::Text(String::new()),
        Some(Content::Text(s)) => wire::Content::Text(s.clone()),
        Some(Content::Parts(parts)) => {
            let mut cc = None;
            let mut blocks = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                if let Some(mut b) = part_block(p, i, j)? {
                    // cache_control belongs on the tool_result block itself.
                    if let Some(c) = b.cache_control.take() {
                        cc = Some(c);
                    }
                    blocks.push(b);
                }
            }
            let mut block = Block {
                kind: "tool_result".into(),
                tool_use_id: Some(id),
                content: Some(wire::Content::Blocks(blocks)),
                cache_control: cc,
                ..Block::default()
            };
            if let Some(c) = m.extra.get("cache_control") {
                block.cache_control = Some(c.clone());
            }
            return Ok(block);
        }
    };
    Ok(Block {
        kind: "tool_result".into(),
        tool_use_id: Some(id),
        content: Some(content),
        cache_control: m.extra.get("cache_control").cloned(),
        ..Block::default()
    })
}

fn tool_def(t: &crate::types::Tool, i: usize) -> Result<ToolDef, ApiError> {
    if t.kind != "function" {
        // An Anthropic server tool (`web_search_20250305`, `bash_20250124` …): pass it on.
        let v = serde_json::to_value(t).unwrap_or(Value::Null);
        return serde_json::from_value(v).map_err(|e| {
            ApiError::bad_request(format!("tools[{i}]: tool type \"{}\": {e}", t.kind))
                .with_param(format!("tools[{i}]"))
        });
    }
    let f = t.function.as_ref().ok_or_else(|| {
        ApiError::bad_request(format!("tools[{i}]: a function tool needs `function`"))
            .with_param(format!("tools[{i}].function"))
    })?;
    let mut def =
        ToolDef {
            name: f.name.clone(),
            description: f.description.clone().filter(|d| !d.is_empty()),
            input_schema: Some(f.parameters.clone().unwrap_or_else(|| {
                RawJson::from_value(&json!({"type": "object", "properties": {}}))
            })),
            cache_control: t.cache_control.clone(),
            ..ToolDef::default()
        };
    if let Some(s) = f.strict {
        def.extra.insert("strict".into(), Value::Bool(s));
    }
    for (k, v) in &t.extra {
        // `defer_loading` and other Anthropic tool fields written beside `function`.
        def.extra.insert(k.clone(), v.clone());
    }
    Ok(def)
}

/// Whether a Claude model takes `thinking: {type: "adaptive"}` with `output_config.effort`:
/// version 4.6 and later (4.7 and later take nothing else). Names without a version (test
/// models, aliases) get the budgeted form every thinking model has accepted.
pub fn supports_adaptive_thinking(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    if name.contains("mythos") || name.contains("fable") {
        return true;
    }
    // `claude-opus-4-6`, `claude-3-7-sonnet-20250219`, `claude-opus-4-20250514`.
    let mut numbers = name
        .split(['-', '.', '@'])
        .filter_map(|t| t.parse::<u32>().ok().map(|n| (n, t.len())))
        // A date suffix (`20250514`) is not a version.
        .take_while(|(_, len)| *len < 6)
        .map(|(n, _)| n);
    match (numbers.next(), numbers.next()) {
        (Some(major), minor) => (major, minor.unwrap_or(0)) >= (4, 6),
        (None, _) => false,
    }
}

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason(stop: Option<&str>) -> Option<String> {
    let r = match stop? {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    };
    Some(r.to_owned())
}

/// A thinking or redacted-thinking block as it appears in `thinking_blocks`.
pub fn thinking_block_value(b: &Block) -> Value {
    let mut v = Map::new();
    v.insert("type".into(), Value::String(b.kind.clone()));
    if b.kind == "redacted_thinking" {
        v.insert(
            "data".into(),
            Value::String(b.data.clone().unwrap_or_default()),
        );
    } else {
        v.insert(
            "thinking".into(),
            Value::String(b.thinking.clone().unwrap_or_default()),
        );
        if let Some(s) = &b.signature {
            v.insert("signature".into(), Value::String(s.clone()));
        }
    }
    Value::Object(v)
}

/// Anthropic Messages answer → OpenAI chat completion.
pub fn from_wire(resp: MessagesResponse, json_tool: bool, created: i64) -> ChatResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    let mut other_blocks = Vec::new();
    let mut json_answer = false;
    for b in &resp.content {
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            "thinking" | "redacted_thinking" => {
                reasoning.push_str(b.thinking.as_deref().unwrap_or(""));
                thinking_blocks.push(thinking_block_value(b));
            }
            "tool_use" if json_tool && b.name.as_deref() == Some(JSON_TOOL) => {
                json_answer = true;
                text.push_str(&b.input.clone().unwrap_or(json!({})).to_string());
            }
            "tool_use" => tool_calls.push(ToolCall {
                index: None,
                id: b.id.clone(),
                kind: Some("function".into()),
                function: Some(FunctionCall {
                    name: b.name.clone(),
                    arguments: Some(b.input.clone().unwrap_or(json!({})).to_string()),
                }),
                extra: Map::new(),
            }),
            // Server tools, citations' sources …: kept for clients that know them.
            _ => other_blocks.push(serde_json::to_value(b).unwrap_or(Value::Null)),
        }
    }
    let mut message = Message {
        role: "assistant".into(),
        content: if text.is_empty() && !tool_calls.is_empty() {
            None
        } else {
            Some(Content::Text(text))
        },
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        reasoning_content: (!thinking_blocks.is_empty()).then_some(reasoning),
        thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
        ..Message::default()
    };
    if !other_blocks.is_empty() {
        message.extra.insert(
            "provider_specific_fields".into(),
            json!({"content_blocks": other_blocks}),
        );
    }
    let finish = if json_answer {
        Some("stop".to_owned())
    } else {
        finish_reason(resp.stop_reason.as_deref())
    };
    ChatResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish,
            extra: Map::new(),
        }],
        usage: Some(resp.usage.to_openai()),
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests;
