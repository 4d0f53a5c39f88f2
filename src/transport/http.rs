//! One TCP port: JSON-RPC over HTTP POST and WebSocket (jsonrpsee), the REST shim
//! ([`dimsum_rest::RestLayer`]), registry notifications ([`super::events`]) and the operator
//! endpoints of [`super::front`]. Middleware order: front (health, metrics, request log) → events
//! (`POST /events`, its own token) → guard (API token, deadline) → REST shim → jsonrpsee.
//! Limits on body size, connections and request time; graceful shutdown with a bounded drain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dimsum_rest::RestLayer;
use http::{Request, StatusCode};
use jsonrpsee::server::{HttpResponse, Server, ServerConfig};
use tower::{Layer, Service};

use super::events::EventsLayer;
use super::front::FrontLayer;
use crate::reload::Live;
use crate::rpc::{DimsumApiServer as _, Rpc};

/// Server limits and caller authentication.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest a request may take before it is answered 503 (lookups have their own, shorter
    /// bound; this catches everything else).
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_request_bytes: u32,
    /// Largest response body.
    pub max_response_bytes: u32,
    /// Connections at once.
    pub max_connections: u32,
    /// How long shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(30),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_connections: 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, then drains for at most `limits.drain`.
pub async fn serve(
    listener: std::net::TcpListener,
    live: Arc<Live>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .build();
    let guard = GuardLayer {
        live: live.clone(),
        timeout: limits.request_timeout,
    };
    let events = EventsLayer::new(
        live.clone(),
        limits.max_request_bytes as usize,
        limits.request_timeout,
    );
    let middleware = tower::ServiceBuilder::new()
        .layer(FrontLayer::new(live.clone()))
        .layer(events)
        .layer(guard)
        .layer(RestLayer::new(Rpc::new(live.clone())));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build_from_tcp(listener)?;
    let handle = server.start(Rpc::new(live).into_rpc());
    shutdown.await;
    tracing::info!("shutting down");
    let _ = handle.stop();
    if tokio::time::timeout(limits.drain, handle.stopped())
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "in-flight requests did not finish in time");
    }
    Ok(())
}

/// Checks the caller's bearer token and bounds the request's time. Health endpoints never reach
/// it (the health layer answers them first). WebSocket upgrades are requests too, so they are
/// checked the same way.
#[derive(Debug, Clone)]
struct GuardLayer {
    /// Holds the expected token, which a reload may change.
    live: Arc<Live>,
    timeout: Duration,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            live: self.live.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
struct Guard<S> {
    inner: S,
    live: Arc<Live>,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for Guard<S>
where
    S: Service<Request<B>, Response = HttpResponse>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // jsonrpsee logs whole requests at trace level; sensitive values print as "Sensitive".
        for (name, value) in req.headers_mut().iter_mut() {
            if matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            ) {
                value.set_sensitive(true);
            }
        }
        let bearer = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !self.live.authorizes(bearer) {
            let mut response = super::json_error(
                StatusCode::UNAUTHORIZED,
                -32001,
                "missing or invalid bearer token",
            );
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"dimsum\""),
            );
            return Box::pin(std::future::ready(Ok(response)));
        }
        let timeout = self.timeout;
        let fut = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(result) => result,
                Err(_) => Ok(super::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32603,
                    "request timed out",
                )),
            }
        })
    }
}
