//! One TCP port: JSON-RPC over HTTP POST and WebSocket (jsonrpsee), the REST shim
//! ([`dimsum_rest::RestLayer`]), registry notifications ([`super::events`]) and the operator
//! endpoints of [`super::front`]. Middleware order: front (health, metrics, request log) → events
//! (`POST /events`, its own token) → guard (API token, deadline) → bodies (408, 413) → REST shim
//! → jsonrpsee.
//! Connections are accepted by [`super::connections`] (a cap on sockets, a header timeout);
//! limits on body size, body time and request time; graceful shutdown with a bounded drain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dimsum_rest::RestLayer;
use http::{Request, StatusCode};
use jsonrpsee::Methods;
use jsonrpsee::server::{HttpResponse, PingConfig, Server, ServerConfig, stop_channel};
use tower::{Layer, Service};

use super::body::BodyLayer;
use super::connections;
use super::events::EventsLayer;
use super::front::FrontLayer;
use crate::config::ServerLimits;
use crate::reload::Live;
use crate::rpc::{DimsumApiServer as _, Rpc};

/// WebSocket keep-alive: a ping every 30 s; a client silent for 60 s, twice, is disconnected.
/// The header timeout does not apply once a connection is upgraded.
pub const WS_PING: Duration = Duration::from_secs(30);
/// See [`WS_PING`].
pub const WS_INACTIVE: Duration = Duration::from_secs(60);

/// Serves on `listener` until `shutdown` resolves, then drains for at most `limits.drain`.
pub async fn serve(
    listener: std::net::TcpListener,
    live: Arc<Live>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let ping = PingConfig::new()
        .ping_interval(WS_PING)
        .inactive_limit(WS_INACTIVE)
        .max_failures(2);
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .enable_ws_ping(ping)
        .build();
    let guard = GuardLayer {
        live: live.clone(),
        timeout: limits.request_timeout,
    };
    let bodies = BodyLayer {
        max_bytes: u64::from(limits.max_request_bytes),
        timeout: limits.body_timeout,
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
        .layer(bodies)
        .layer(RestLayer::new(Rpc::new(live.clone())));
    let builder = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .to_service_builder();
    let methods: Methods = Rpc::new(live.clone()).into_rpc().into();
    let (stop, handle) = stop_channel();
    let metrics = live.current().metrics().clone();
    let per_connection = || builder.clone().build(methods.clone(), stop.clone());
    let accepting = connections::accept(listener, per_connection, &limits, metrics, stop.clone());
    let stopping = async {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = handle.stop();
    };
    tokio::join!(accepting, stopping);
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
