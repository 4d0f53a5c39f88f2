//! Newline-delimited JSON-RPC 2.0 over any `AsyncBufRead` + `AsyncWrite` (stdin/stdout in
//! production, `tokio::io::duplex` in tests).
//!
//! jsonrpsee has no stdio transport, and `Methods::raw_json_request` takes exactly one request
//! with an id, so this module does the rest of the spec itself: parse errors (-32700) and invalid
//! requests (-32600) answered with `id: null`, batches split and reassembled, notifications
//! (no `id`) answered with nothing, and a maximum line length. Requests run concurrently (bounded);
//! each reply carries its id and is written as one line. At EOF, what is in flight finishes first.

use std::sync::Arc;

use jsonrpsee::Methods;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// Default longest request line.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;
/// Requests in flight at once; reading pauses beyond this.
const MAX_IN_FLIGHT: usize = 256;

/// Serves requests from `reader` until EOF, writing replies to `writer`.
pub async fn serve<R, W>(
    methods: Methods,
    mut reader: R,
    writer: W,
    max_line: usize,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<String>(MAX_IN_FLIGHT);
    let write = tokio::spawn(async move {
        let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, writer);
        while let Some(reply) = rx.recv().await {
            write_reply(&mut out, reply).await?;
            // Flush only when nothing else is ready: pipelined replies share one write.
            while let Ok(reply) = rx.try_recv() {
                write_reply(&mut out, reply).await?;
            }
            out.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut buf = Vec::new();
    loop {
        let line = match read_line(&mut reader, max_line, &mut buf).await? {
            Line::Eof => break,
            Line::TooLong => {
                let msg = format!("request line longer than {max_line} bytes");
                if tx.send(error_reply("null", -32600, &msg)).await.is_err() {
                    break;
                }
                continue;
            }
            Line::Text(t) => t,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (methods, tx) = (methods.clone(), tx.clone());
        tasks.spawn(async move {
            if let Some(reply) = handle(&methods, &line).await {
                let _ = tx.send(reply).await;
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    drop(tx);
    write.await.map_err(std::io::Error::other)?
}

async fn write_reply<W: AsyncWrite + Unpin>(out: &mut W, mut reply: String) -> std::io::Result<()> {
    // Raw CR/LF can only be whitespace in valid JSON (never inside a string), so a pretty-printed
    // manifest becomes one line without changing its meaning.
    if reply.contains(['\n', '\r']) {
        reply = reply.replace(['\n', '\r'], " ");
    }
    reply.push('\n');
    out.write_all(reply.as_bytes()).await
}

enum Line {
    Text(String),
    TooLong,
    Eof,
}

/// Reads one line of at most `max` bytes; a longer one is skipped to its end.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Text(String::from_utf8_lossy(buf).into_owned()),
            });
        }
        let (chunk, end) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long && buf.len() + chunk.len() > max {
            too_long = true;
            buf.clear();
        }
        if !too_long {
            buf.extend_from_slice(chunk);
        }
        let consumed = end.unwrap_or(chunk.len());
        r.consume(consumed);
        if end.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(String::from_utf8_lossy(buf).into_owned())
            });
        }
    }
}

/// The reply to one line: a response, a batch of responses, or nothing (notifications, blanks).
async fn handle(methods: &Methods, line: &str) -> Option<String> {
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
    match methods.raw_json_request(text, 1).await {
        Ok((reply, _)) => Some(reply.get().to_owned()),
        Err(e) => Some(error_reply(
            id_text,
            -32600,
            &format!("Invalid request: {e}"),
        )),
    }
}

fn error_reply(id: &str, code: i32, message: &str) -> String {
    let message = serde_json::Value::from(message);
    format!(r#"{{"jsonrpc":"2.0","error":{{"code":{code},"message":{message}}},"id":{id}}}"#)
}

#[cfg(test)]
mod tests;
