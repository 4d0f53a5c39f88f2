//! The outermost HTTP layer: `/healthz`, `/readyz` and `/metrics` (answered here, without the API
//! token: they carry no secrets), a request id on every request (the caller's `X-Request-Id`
//! when it is sane, else one of ours), one log line per request, request metrics, and
//! credentials in headers marked sensitive before any inner layer (or `/events`) sees them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Request, StatusCode};
use jsonrpsee::server::HttpResponse;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::reload::Live;

const REQUEST_ID: &str = "x-request-id";

#[derive(Debug, Clone)]
pub(crate) struct FrontLayer {
    live: Arc<Live>,
    next_id: Arc<AtomicU64>,
}

impl FrontLayer {
    pub(crate) fn new(live: Arc<Live>) -> FrontLayer {
        FrontLayer {
            live,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;
    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            live: self.live.clone(),
            next_id: self.next_id.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Front<S> {
    inner: S,
    live: Arc<Live>,
    next_id: Arc<AtomicU64>,
}

/// The metrics label for a path: bounded, so a scanner cannot blow up the series count.
fn route_of(path: &str, upgrade: bool) -> &'static str {
    match path {
        "/" if upgrade => "websocket",
        "/" => "jsonrpc",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        "/events" => "events",
        _ => match path.rsplit('/').next() {
            Some("history") => "history",
            Some("metadata" | "manifest") => "metadata",
            Some("labels") => "labels",
            _ => "other",
        },
    }
}

/// A bounded set of method labels (anything unusual is `other`).
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        _ => "other",
    }
}

fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| s.to_owned())
}

impl<S, B> Service<Request<B>> for Front<S>
where
    S: Service<Request<B>, Response = HttpResponse>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = Instant::now();
        // Anything that logs a request's headers (hyper and tower at trace level, a Debug print)
        // shows these as "Sensitive": the API token, the events token, cookies.
        for (name, value) in req.headers_mut().iter_mut() {
            if matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            ) {
                value.set_sensitive(true);
            }
        }
        let path = req.uri().path().to_owned();
        let method = method_label(req.method());
        let route = route_of(&path, super::websocket::wants_websocket(req.headers()));
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(sane_id)
            .unwrap_or_else(|| format!("dimsum-{}", self.next_id.fetch_add(1, Ordering::Relaxed)));
        let service = self.live.current();
        let readable = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        // Health and metrics are answered here; everything else goes on inward.
        // Everything logged while answering (registry requests, cache decisions, errors) carries
        // the request id through this span.
        let span = tracing::info_span!("request", request_id = %id);
        let inner = (!matches!(route, "health" | "metrics")).then(|| {
            span.in_scope(|| self.inner.call(req))
                .instrument(span.clone())
        });
        Box::pin(async move {
            let mut response = match inner {
                Some(fut) => fut.await?,
                None if !readable => super::json_error_with(
                    StatusCode::METHOD_NOT_ALLOWED,
                    -32600,
                    &format!("{path} is read with GET or HEAD"),
                    http::header::ALLOW,
                    "GET, HEAD",
                ),
                None if route == "health" => super::respond(
                    StatusCode::OK,
                    "application/json",
                    r#"{"status":"ok"}"#.to_owned(),
                ),
                None => {
                    let body = service.metrics().encode(service.cached_bytes().await);
                    super::respond(
                        StatusCode::OK,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        body,
                    )
                }
            };
            if let Ok(v) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, v);
            }
            let status = response.status().as_u16();
            let seconds = started.elapsed().as_secs_f64();
            service.metrics().request(route, method, status, seconds);
            // The path names an account, a repository and a reference: never a secret.
            tracing::info!(request_id = %id, %method, %path, status, ms = crate::metrics::millis(started.elapsed()), "request");
            Ok(response)
        })
    }
}
