//! JSON-RPC over WebSocket: each text message is answered by [`super::dispatch`], as a stdio
//! line or an HTTP body is.
//!
//! The handshake is RFC 6455's (`Upgrade: websocket`, version 13, `Sec-WebSocket-Key`). An offer
//! to upgrade to anything else (Java's `HttpClient` offers h2c on every plain-HTTP request) is
//! ignored, as RFC 9110 §7.8 allows: the request is served as the HTTP/1.1 request it also is.
//! Messages are capped at the request body cap; up to [`IN_FLIGHT`] requests of one connection
//! run at once. The server pings every [`PING`]; a connection that has sent nothing, pongs
//! included, for [`SILENCE`] is closed. The HTTP header timeout does not apply once upgraded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use hyper_util::rt::TokioIo;
use jsonrpsee::Methods;
use jsonrpsee::server::{HttpBody, HttpResponse};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key};

/// How often the server pings.
pub(crate) const PING: Duration = Duration::from_secs(30);
/// How long a connection may send nothing (not even a pong) before it is closed.
pub(crate) const SILENCE: Duration = Duration::from_secs(60);
/// Requests of one connection answered at once; reading pauses beyond it.
const IN_FLIGHT: usize = 64;

/// Whether `headers` ask for a WebSocket (not h2c or anything else).
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
}

/// Answers the handshake and serves the connection in the background until it closes or
/// `stop` changes.
pub(crate) fn upgrade<B: Send + 'static>(
    mut req: Request<B>,
    methods: Methods,
    max_message: usize,
    stop: watch::Receiver<bool>,
) -> HttpResponse {
    let headers = req.headers();
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = headers.get("sec-websocket-key").filter(|_| version_ok) else {
        let mut response = super::json_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "a WebSocket upgrade needs Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        );
        response
            .headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return response;
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The connection outlives the upgrade request; what it logs keeps that request's id.
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        .max_message_size(Some(max_message))
                        .max_frame_size(Some(max_message));
                    let io = TokioIo::new(upgraded);
                    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    serve(ws, methods, stop).await;
                }
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
            }
        },
        span,
    ));
    let mut response = http::Response::new(HttpBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", v);
    }
    response
}

async fn serve<S>(ws: WebSocketStream<S>, methods: Methods, mut stop: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (replies, mut outbox) = mpsc::channel::<Message>(IN_FLIGHT);
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            message = stream.next() => {
                heard = tokio::time::Instant::now();
                let text = match message {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "WebSocket read failed");
                        break;
                    }
                };
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let (methods, replies) = (methods.clone(), replies.clone());
                let answer = async move {
                    if let Some(reply) = super::dispatch::handle_message(&methods, &text).await {
                        let _ = replies.send(Message::text(reply)).await;
                    }
                    drop(permit);
                };
                // A spawned task starts outside every span: carry the connection's.
                tokio::spawn(tracing::Instrument::in_current_span(answer));
            }
            Some(reply) = outbox.recv() => {
                if sink.send(reply).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= SILENCE {
                    tracing::debug!("closing a silent WebSocket");
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}
