//! Request bodies: how long they may take and how large they may be, answered in JSON.
//!
//! - A JSON-RPC body (`POST /`) that has not arrived within `server.bodyTimeoutMillis` gets 408
//!   (with `Connection: close`); REST routes read no body, so nothing is timed there. A
//!   [`Watched`] body says when it has been read to its end, which tells a slow body from a slow
//!   answer.
//! - A body declared larger than the cap gets 413 — after reading (and dropping) up to
//!   [`DRAIN_MAX`] of it: answered while the client is still sending, the client would see its
//!   connection reset instead of the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use jsonrpsee::server::HttpResponse;
use tower::{Layer, Service};

/// The most of an oversized body read before it is refused.
pub(crate) const DRAIN_MAX: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct BodyLayer {
    /// The largest body accepted.
    pub(crate) max_bytes: u64,
    /// How long a JSON-RPC body may take to arrive.
    pub(crate) timeout: Duration,
}

impl<S> Layer<S> for BodyLayer {
    type Service = Bodies<S>;
    fn layer(&self, inner: S) -> Bodies<S> {
        Bodies {
            inner,
            limits: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bodies<S> {
    inner: S,
    limits: BodyLayer,
}

impl<S, B> Service<Request<B>> for Bodies<S>
where
    S: Service<Request<Watched<B>>, Response = HttpResponse>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let BodyLayer { max_bytes, timeout } = self.limits;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes) {
            let body = req.into_body();
            return Box::pin(async move {
                drain(body, timeout).await;
                let msg = format!("request body larger than {max_bytes} bytes");
                Ok(closing(StatusCode::PAYLOAD_TOO_LARGE, &msg))
            });
        }
        let reads_body = req.uri().path() == "/" && req.method() == http::Method::POST;
        let (parts, body) = req.into_parts();
        let (body, done) = Watched::new(body);
        let fut = self.inner.call(Request::from_parts(parts, body));
        if !reads_body || done.load(Ordering::Acquire) {
            return Box::pin(fut);
        }
        Box::pin(async move {
            tokio::pin!(fut);
            tokio::select! {
                result = &mut fut => return result,
                () = tokio::time::sleep(timeout) => {}
            }
            if done.load(Ordering::Acquire) {
                // The body came; the answer is what is slow, and the request timeout bounds it.
                return fut.await;
            }
            let msg = format!(
                "the request body did not arrive within {}ms",
                timeout.as_millis()
            );
            Ok(closing(StatusCode::REQUEST_TIMEOUT, &msg))
        })
    }
}

/// Our JSON error, on a connection that will not be reused (its body is in an unknown state).
fn closing(status: StatusCode, message: &str) -> HttpResponse {
    super::json_error_with(status, -32600, message, http::header::CONNECTION, "close")
}

/// Reads and drops up to [`DRAIN_MAX`] of `body`, for at most `within`.
async fn drain<B: Body + Unpin>(mut body: B, within: Duration) {
    let read = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame
                .data_ref()
                .map_or(0, |d| bytes::Buf::remaining(d) as u64);
            if seen > DRAIN_MAX {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
}

/// A body that sets its flag once its last frame has been read (or at once, when it is empty).
#[derive(Debug)]
pub(crate) struct Watched<B> {
    inner: B,
    done: Arc<AtomicBool>,
}

impl<B: Body> Watched<B> {
    /// Wraps `inner`; the flag tells whether it has been read whole.
    pub(crate) fn new(inner: B) -> (Watched<B>, Arc<AtomicBool>) {
        let done = Arc::new(AtomicBool::new(inner.is_end_stream()));
        let watched = Watched {
            inner,
            done: done.clone(),
        };
        (watched, done)
    }
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
