//! The accept loop of `serve`: every accepted socket counts against the connection cap, and no
//! connection may sit idle or dribble its headers for longer than the header timeout.
//!
//! jsonrpsee's server loop, which this replaces, counted a connection only once a request had
//! arrived, and hyper waits for request headers forever unless told otherwise: 3,000 clients
//! sending half a request were all held. Here:
//! - **The cap** ([`ServerLimits::max_connections`]) is a semaphore taken at `accept`; a socket
//!   beyond it is closed at once (`dimsum_connections_shed_total{reason="cap"}`), so the process
//!   never holds more client sockets than the cap.
//! - **The header timeout** is hyper's: from the connection's start, or the end of the previous
//!   answer on a keep-alive connection, the next request's headers must arrive within
//!   [`ServerLimits::header_timeout`]. An idle keep-alive connection is closed after the same time
//!   (as Node.js does after 5 s); a half-sent request is closed too (`reason="timeout"`; hyper
//!   sends no 408 there). Requests being answered, answers being written however slowly, and
//!   WebSocket connections (once upgraded, hyper no longer reads them) are not affected.
//! - Only HTTP/1.1 is spoken: sniffing for an HTTP/2 preface would wait, unbounded, for bytes a
//!   silent client never sends. Upgrades stay possible for WebSocket, and an upgraded socket
//!   keeps its place under the cap until it closes (the place rides with the socket).

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jsonrpsee::core::BoxError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::ServerLimits;
use crate::metrics::{Metrics, OpenConnection};

/// Accepts connections until `stop` turns `true`, then lets the open ones finish for at most
/// `limits.drain`.
/// `service` makes the HTTP service for each connection.
pub(crate) async fn accept<S, B>(
    listener: TcpListener,
    service: impl Fn() -> S,
    limits: &ServerLimits,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let cap = limits.max_connections;
    let slots = Arc::new(Semaphore::new(cap));
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(stop.clone()) => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connection_shed("cap");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let socket = Counted {
            socket,
            _open: metrics.connection_opened(),
            _slot: slot,
        };
        let http = TowerToHyperService::new(service());
        let header_timeout = limits.header_timeout;
        let (stop, metrics) = (stop.clone(), metrics.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(socket), http)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopped(stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    metrics.connection_shed("timeout");
                }
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    // Every slot back means every connection has finished.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "in-flight requests did not finish in time");
    }
}

/// Resolves once `stop` is `true` (at once if it already is).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A client socket that holds its place under the cap, and its count, until it is dropped:
/// after a WebSocket upgrade that is when the WebSocket closes.
struct Counted {
    socket: TcpStream,
    _open: OpenConnection,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
