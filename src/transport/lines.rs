//! Newline-delimited JSON-RPC 2.0 over any `AsyncBufRead` + `AsyncWrite` (stdin/stdout in
//! production, `tokio::io::duplex` in tests).
//!
//! Each line is one JSON-RPC message, answered by [`super::dispatch`] (the same as over HTTP and
//! WebSocket); this module adds a maximum line length and concurrency. Requests run concurrently
//! (bounded); each reply carries its id and is written as one line. At EOF, what is in flight
//! finishes first.

use std::sync::Arc;

use jsonrpsee::Methods;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::dispatch::{error_reply, handle};

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
    let mut read: u64 = 0;
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
        // Each line is a request of its own in the log: `stdio-<line number>`.
        read += 1;
        let span = tracing::info_span!("request", request_id = %format!("stdio-{read}"));
        let answer = async move {
            if let Some(reply) = handle(&methods, &line).await {
                let _ = tx.send(reply).await;
            }
            drop(permit);
        };
        tasks.spawn(tracing::Instrument::instrument(answer, span));
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

#[cfg(test)]
mod tests;
