//! One JSON-RPC 2.0 dispatcher for every transport (stdio lines, HTTP bodies, WebSocket
//! messages), so each answers the same.
//!
//! `Methods::raw_json_request` takes exactly one request with an id, so this module does the rest
//! of the spec itself: parse errors (-32700) and invalid requests (-32600, an object, array or
//! boolean id included) answered with `id: null`, batches split and reassembled (an invalid member
//! gets its own error), notifications (no `id`) answered with nothing.

use jsonrpsee::Methods;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tokio::task::JoinSet;

/// The reply to one line: a response, a batch of responses, or nothing (notifications, blanks).
pub(crate) async fn handle(methods: &Methods, line: &str) -> Option<String> {
    let text = line.trim();
    if text.is_empty() {
        return None;
    }
    if serde_json::from_str::<&RawValue>(text).is_err() {
        return Some(error_reply("null", -32700, "Parse error"));
    }
    if !text.starts_with('[') {
        return single(methods, text).await;
    }
    let items: Vec<Box<RawValue>> = match serde_json::from_str(text) {
        Ok(items) => items,
        Err(_) => return Some(error_reply("null", -32700, "Parse error")),
    };
    if items.is_empty() {
        return Some(error_reply("null", -32600, "Invalid request: empty batch"));
    }
    let mut set = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let methods = methods.clone();
        set.spawn(async move { (i, single(&methods, item.get()).await) });
    }
    let mut replies = Vec::new();
    while let Some(Ok((i, reply))) = set.join_next().await {
        if let Some(r) = reply {
            replies.push((i, r));
        }
    }
    if replies.is_empty() {
        return None;
    }
    // Order does not matter to the spec; request order is kinder to readers.
    replies.sort_by_key(|(i, _)| *i);
    Some(format!(
        "[{}]",
        replies
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join(",")
    ))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<&'a RawValue>,
    /// `Some` even for `"id": null`, so a null id is not mistaken for a notification.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

async fn single(methods: &Methods, text: &str) -> Option<String> {
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
        return Some(error_reply(
            "null",
            -32600,
            "Invalid request: not a JSON-RPC request object",
        ));
    };
    let version_ok = envelope.jsonrpc.is_some_and(|v| v.get() == "\"2.0\"");
    let method_ok = envelope.method.is_some_and(|m| m.get().starts_with('"'));
    let Some(id) = envelope.id else {
        // A notification gets no reply; our methods have no side effects, so it need not run.
        return if version_ok && method_ok {
            None
        } else {
            Some(error_reply("null", -32600, "Invalid request"))
        };
    };
    let id_ok = matches!(
        id.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    );
    let id_text = if id_ok { id.get() } else { "null" };
    if !(version_ok && method_ok && id_ok) {
        return Some(error_reply(
            id_text,
            -32600,
            "Invalid request: needs \"jsonrpc\":\"2.0\", a method name and a string or number id",
        ));
    }
    // Answered here rather than by jsonrpsee, so the refusal names the method, the nearest
    // spelling and carries `data` like every other error.
    let name: String = envelope
        .method
        .and_then(|m| serde_json::from_str(m.get()).ok())
        .unwrap_or_default();
    if methods.method(&name).is_none() {
        let mut known: Vec<&str> = methods.method_names().collect();
        known.sort_unstable();
        let hint = dimsum_rest::params::closest(&name, &known)
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        let message = format!(
            "Method not found: {name:?}{hint}; the methods are {}",
            known.join(", ")
        );
        return Some(error_reply(id_text, -32601, &message));
    }
    match methods.raw_json_request(text, 1).await {
        Ok((reply, _)) => Some(reply.get().to_owned()),
        Err(e) => Some(error_reply(
            id_text,
            -32600,
            &format!("Invalid request: {e}"),
        )),
    }
}

/// The reply to one HTTP body or WebSocket message, where (unlike a stdio line) an empty one is
/// not a blank line to skip but a message that is not JSON.
pub(crate) async fn handle_message(methods: &Methods, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some(error_reply("null", -32700, "Parse error: empty message"));
    }
    handle(methods, text).await
}

pub(crate) fn error_reply(id: &str, code: i32, message: &str) -> String {
    let error = serde_json::json!({
        "code": code,
        "message": message,
        "data": {
            "name": dimsum_rest::codes::rpc_name(code),
            "httpStatus": if code == -32601 { 404 } else { 400 },
        },
    });
    format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
}
